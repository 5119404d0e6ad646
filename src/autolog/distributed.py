"""Which process logs under distributed training: only global rank 0.

The rank comes from the launcher's environment first (``RANK``, set by torchrun, Lightning and
accelerate; then ``SLURM_PROCID``, ``OMPI_COMM_WORLD_RANK``, ``PMI_RANK``), then from an
initialised ``torch.distributed`` process group, looked up only when torch is already imported.
Integrations that know better (a Lightning ``Trainer``'s ``global_rank``, a transformers
``TrainerState``'s ``is_world_process_zero``) pass it in.
"""

from __future__ import annotations

import os
import sys

__all__ = ["global_rank", "is_global_zero"]

_RANK_VARIABLES = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def global_rank() -> int:
    for name in _RANK_VARIABLES:
        raw = os.environ.get(name)
        if raw is not None and raw.strip().lstrip("-").isdigit():
            if name == "SLURM_PROCID" and os.environ.get("SLURM_NTASKS", "1") == "1":
                continue  # a single-task allocation: SLURM_PROCID is 0 and says nothing
            return int(raw)
    return _torch_rank()


def _torch_rank() -> int:
    dist = sys.modules.get("torch.distributed")
    if dist is None:
        return 0
    try:
        if dist.is_available() and dist.is_initialized():
            return int(dist.get_rank())
    except Exception:
        pass
    return 0


def is_global_zero() -> bool:
    return global_rank() == 0
