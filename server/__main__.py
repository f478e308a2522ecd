"""``python -m tickwire.server ...`` is ``tickwire server ...`` (or any subcommand named first;
``--help`` is the server's help)."""

import sys

from tickwire.cli import COMMANDS, OWN_PARSER, main

argv = sys.argv[1:]
if not argv or argv[0] not in (*COMMANDS, *OWN_PARSER):
    argv = ["server", *argv]
sys.exit(main(argv))
