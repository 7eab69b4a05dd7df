"""``python -m peerscope.cluster ...``: the command line (also what the driver child runs)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
