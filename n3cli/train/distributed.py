"""torchrun support for training: cross-rank agreement (set-up: :mod:`n3cli.engine.distributed`).

Single-process runs never touch ``torch.distributed``. Under ``torchrun`` (``WORLD_SIZE``
> 1) every rank trains on its own share of each global batch with DistributedDataParallel
(gloo on CPU, nccl on CUDA); rank 0 alone writes checkpoints, logs and exports.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from n3cli.engine.distributed import DistInfo


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True if ``flag`` is set on any rank (one tiny all-reduce; a sync point)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= info.world
    return value
