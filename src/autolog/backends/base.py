"""The public home of what a backend plugin implements and receives.

A new backend is one module: subclass :class:`Backend`, fill in ``start_run``, ``log_batch`` and
``end_run`` (and ``log_artifact`` / ``log_model`` when it stores files, ``log_media`` when it
shows media itself), and register the class
from an ``autolog_register_backends`` hook (see ``docs/plugins.md``). The classes live with the
delivery code that calls them (:mod:`autolog.delivery.contract`).
"""

from __future__ import annotations

from ..delivery.contract import (
    Backend,
    BackendUnavailable,
    Batch,
    Media,
    Metric,
    RejectedBatch,
    RunRef,
)

__all__ = ["Backend", "BackendUnavailable", "Batch", "Media", "Metric", "RejectedBatch", "RunRef"]
