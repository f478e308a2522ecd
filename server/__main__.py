"""``python -m tickwire.server ...`` is ``tickwire server ...`` (or any subcommand named first)."""
import sys

from tickwire.cli import main

argv = sys.argv[1:]
if not argv or argv[0] not in ("run", "server", "agent", "bench", "-h", "--help"):
    argv = ["server", *argv]
sys.exit(main(argv))
