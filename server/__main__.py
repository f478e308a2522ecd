"""``python -m tickwire.server ...`` is ``tickwire server ...`` (or any subcommand named first;
``--help`` is the server's help)."""

import sys

from tickwire.cli import COMMANDS, main

argv = sys.argv[1:]
if not argv or argv[0] not in (*COMMANDS, "bench"):
    argv = ["server", *argv]
sys.exit(main(argv))
