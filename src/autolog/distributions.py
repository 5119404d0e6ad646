"""Weight and gradient histograms of a model, every N epochs (``enable(log_histograms=N)``).

Each parameter tensor is one histogram (``weights/<name>``, ``gradients/<name>``) at step =
epoch, through ``Run.log_histogram``: a tensor on a GPU is sampled there (at most a million
values), copied to host memory without blocking and binned on the journal writer's thread, so
the training thread never waits for the GPU. At most :data:`MAX_TENSORS` tensors per call (the
first ones, in the model's order). Framework-neutral: integrations hand in ``(name, tensor)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_TENSORS", "due", "log_distributions"]

MAX_TENSORS = 200


def due(every: int, epoch: int) -> bool:
    """Whether histograms are logged at the end of ``epoch`` (0-based) when asked for every
    ``every`` epochs (0: never)."""
    return every > 0 and (epoch + 1) % every == 0


def log_distributions(run: Any, prefix: str, named: Iterable[tuple[str, Any]],
                      step: int) -> int:
    """``run.log_histogram(f"{prefix}/{name}", tensor, step)`` for each tensor that is there
    (a parameter without a gradient is skipped); how many were logged."""
    count = 0
    for name, tensor in named:
        if tensor is None:
            continue
        if count >= MAX_TENSORS:
            break
        run.log_histogram(f"{prefix}/{name}", tensor, step=step)
        count += 1
    return count
