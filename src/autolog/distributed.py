"""Which process logs under distributed training: only global rank 0.

The rank comes from the launcher's environment first (``RANK``, set by torchrun and accelerate;
then ``SLURM_PROCID``, ``OMPI_COMM_WORLD_RANK``, ``PMI_RANK``; then ``LOCAL_RANK`` with
``NODE_RANK``, which is all Lightning's ``ddp`` launcher gives the processes it starts), then from
an initialised ``torch.distributed`` process group, looked up only when torch is already imported.
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
    local = _int_env("LOCAL_RANK")
    if local is not None and (_int_env("WORLD_SIZE") or 1) > 1:
        node = _int_env("NODE_RANK") or _int_env("GROUP_RANK") or 0
        return node * (_int_env("LOCAL_WORLD_SIZE") or 1) + local  # 0 only on node 0, local 0
    return _torch_rank()


def _int_env(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.lstrip("-").isdigit() else None


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
