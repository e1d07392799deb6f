"""``python -m aisys.cli``: the ``aisys`` command without its script on PATH."""

import sys

from aisys.cli import main

if __name__ == "__main__":
    sys.exit(main())
