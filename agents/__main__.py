"""``python -m tickwire.agents ...`` is ``tickwire agent ...`` (an entry point: it may import
the command, which the agents package itself never does)."""

import sys

from tickwire.cli import main

sys.exit(main(["agent", *sys.argv[1:]]))
