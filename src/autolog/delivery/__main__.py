"""``python -m autolog.delivery``: the detached delivery process (see :mod:`.handoff`)."""

from __future__ import annotations

import sys

from .handoff import main

if __name__ == "__main__":
    sys.exit(main())
