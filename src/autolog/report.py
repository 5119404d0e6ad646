"""The one place that decides what an internal error does, and warnings shown once.

autolog's promise is that its own failures never break a training run: an internal error is
reported once per place as an :class:`~autolog.errors.AutologWarning` and the run goes on.
``AUTOLOG_STRICT=1`` turns that into a raise, which is how the test suite runs.
"""

from __future__ import annotations

import os
import warnings

from ._runtime import runtime
from .config import parse_bool
from .errors import AutologWarning

__all__ = ["internal_error", "is_strict", "warn_once"]


def is_strict() -> bool:
    """Read ``AUTOLOG_STRICT`` live, so a test can flip it without re-enabling."""
    return parse_bool("AUTOLOG_STRICT", os.environ.get("AUTOLOG_STRICT"), False)


def warn_once(place: str, message: str, *, stacklevel: int = 3) -> None:
    """Warn with ``message`` the first time ``place`` reports something in this process."""
    with runtime.warned_lock:
        if place in runtime.warned:
            return
        runtime.warned.add(place)
    warnings.warn(message, AutologWarning, stacklevel=stacklevel)


def internal_error(place: str, exc: BaseException) -> None:
    """Handle an exception raised by autolog's own code at ``place``.

    Strict mode re-raises it; otherwise it becomes one warning per place, and the caller
    carries on with the user's work.
    """
    if is_strict():
        raise exc
    warn_once(place, f"autolog: {place} failed and was skipped: {type(exc).__name__}: {exc}")
