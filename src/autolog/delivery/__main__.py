"""``python -m autolog.delivery``: the detached delivery process (see :mod:`.handoff`).

Before anything else, it lets the process that started it finish exiting (``--after PID``; at
most :data:`PARENT_WAIT` seconds). That process starts it from its exit handlers, and this
process's start-up (autolog's imports, then a tracker's SDK) running beside the interpreter's
teardown made the user's script end about 60 ms later on a 2-core machine.
"""

from __future__ import annotations

import os
import sys
import time

#: the most the delivery waits for the process that started it to exit
PARENT_WAIT = 2.0


def wait_for_parent(argv: list[str], bound: float = PARENT_WAIT) -> None:
    """Wait until the process given by ``--after`` is no longer this one's parent (it exited:
    the orphan was handed to init or a subreaper), at most ``bound`` seconds."""
    try:
        pid = int(argv[argv.index("--after") + 1])
    except (ValueError, IndexError):
        return
    if os.name == "nt":  # pragma: no cover - a parent that exits leaves getppid() as it was
        return
    deadline = time.monotonic() + bound
    while os.getppid() == pid and time.monotonic() < deadline:
        time.sleep(0.005)


if __name__ == "__main__":
    wait_for_parent(sys.argv[1:])
    from .handoff import main

    sys.exit(main())
