"""``python -m tickwire.agents ...`` is ``tickwire agent ...``."""
import sys

from .cli import main

sys.exit(main())
