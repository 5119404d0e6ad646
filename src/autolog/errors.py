"""The exceptions and the warning class autolog raises on purpose.

What autolog does with its *own* failures (warn once, or raise when strict) is in
:mod:`autolog.report`.
"""

from __future__ import annotations

__all__ = ["AutologError", "AutologWarning", "ConfigError", "ModelLoadError", "RunInUse"]


class AutologError(Exception):
    """Base class of the errors autolog raises on purpose."""


class ConfigError(AutologError, ValueError):
    """An invalid setting: the message names the variable and the accepted values."""


class ModelLoadError(AutologError, LookupError):
    """A logged model that cannot be loaded here: the message says why (a class that is not
    importable in this process, a framework that is not installed) and how to load it."""


class RunInUse(AutologError, RuntimeError):
    """A run cannot be resumed: another live process is running it."""


class AutologWarning(UserWarning):
    """Something autolog could not do; the training run is unaffected."""
