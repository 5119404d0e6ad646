"""``python -m autolog.server [options]`` is ``autolog server [options]``."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["server", *sys.argv[1:]]))
