"""What each Python process of an ``autolog run`` command runs at start-up: autolog's bootstrap
``sitecustomize`` calls :func:`bootstrap` when the environment says ``AUTOLOG_LAUNCHED=1``.

It captures stdout and stderr at the file-descriptor level (rank 0), enables autologging (with
the code and the command line captured: ``autolog run`` sets ``AUTOLOG_CAPTURE_CODE`` and
``AUTOLOG_CAPTURE_ARGS``), tags each run with the launch's id and whole command, and makes
``sys.exit`` with a non-zero code end the active runs FAILED. Kept apart from
:mod:`autolog.launch`, so that the command's processes import none of the launcher's modules.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["bootstrap"]

#: launchers whose own process records nothing (the workers they start are bootstrapped)
LAUNCHERS = frozenset({"torchrun", "accelerate", "deepspeed"})


def bootstrap() -> None:
    """Start autolog in this process of an ``autolog run`` command."""
    if os.environ.get("AUTOLOG_LAUNCHED") != "1" or _is_helper_process():
        return
    import autolog

    from . import distributed
    from .config import current

    settings = current()
    if settings.disable:
        return
    if settings.capture_console and distributed.is_global_zero():
        from .capture.console import capture_descriptors

        capture_descriptors()  # first, so that all output is seen
    autolog.enable()
    _tag_runs(os.environ.get("AUTOLOG_LAUNCH_ID", ""),
              os.environ.get("AUTOLOG_LAUNCH_COMMAND", ""))
    _fail_on_exit_code()


def _is_helper_process() -> bool:
    """torchrun's or accelerate's own agent, or a multiprocessing child: nothing to record
    there (the workers they start are bootstrapped themselves)."""
    argv = sys.argv
    if "--multiprocessing-fork" in argv:
        return True
    return bool(argv) and os.path.basename(argv[0]) in LAUNCHERS


def _tag_runs(launch_id: str, command: str) -> None:
    """A run-context plugin: the launch's id and whole command as tags of each run."""
    from .hookspecs import hookimpl
    from .plugins import get_plugins

    tags = {"autolog.launch.id": launch_id, "autolog.launch.command": command}

    class LaunchContext:
        @hookimpl
        def autolog_run_context(self, run: Any) -> dict[str, str]:
            return dict(tags)

    get_plugins().register(LaunchContext(), name="autolog-launch")


def _fail_on_exit_code() -> None:
    """``sys.exit(code)`` with a non-zero code ends the active runs FAILED before exiting."""
    original = sys.exit

    def exit(code: Any = None) -> None:
        if code not in (None, 0):
            _end_active_runs("FAILED")
        original(code)

    exit.__doc__ = original.__doc__
    sys.exit = exit  # type: ignore[assignment]


def _end_active_runs(status: str) -> None:
    from ._runtime import runtime

    pid = os.getpid()
    for run in reversed(list(runtime.runs)):
        if run.owner_pid == pid:
            run.end(status)
