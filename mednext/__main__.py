"""``python -m mednext``: the project CLI."""

import sys

from mednext.cli import entry

if __name__ == "__main__":
    sys.exit(entry())
