"""``python -m tickwire.server ...`` is ``tickwire server ...`` (or any subcommand named first)."""

import sys

from tickwire.cli import COMMANDS, main

argv = sys.argv[1:]
if not argv or argv[0] not in (*COMMANDS, "bench", "-h", "--help"):
    argv = ["server", *argv]
sys.exit(main(argv))
