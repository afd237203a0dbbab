"""Plain N3 aggregation that gathers every query's candidates explicitly.

Memory is O(queries x candidates x patch): use it only as the ground truth in tests.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.ops.geometry import PatchGrid
from n3cli.ops.knn import continuous_knn_exact


def n3_aggregate_reference(
    x: torch.Tensor,
    e: torch.Tensor,
    log_temp: torch.Tensor,
    bn: nn.BatchNorm1d,
    k: int,
    patch: int = 10,
    stride: int = 5,
    window: int = 15,
) -> torch.Tensor:
    """Return the k aggregated images z_1..z_k, shape (B, k, C, H, W).

    ``x`` (B, C, H, W) is aggregated, ``e`` (B, Ce, H, W) is the embedding the distances
    are computed on, ``log_temp`` (B, 1, H, W) the per-pixel log-temperature.
    """
    b, c, h, w = x.shape
    g = PatchGrid(h, w, patch, stride, window)
    xq = g.unfold(x).transpose(1, 2)  # (B, M, Dx)
    eq = g.unfold(e).transpose(1, 2)  # (B, M, De)
    temp = 0.1 * torch.exp(g.patch_mean(log_temp))  # (B, M)
    cand = g.candidate_index().to(x.device)  # (M, Cn)
    ec = eq[:, cand]  # (B, M, Cn, De)
    dist = -((eq[:, :, None, :] - ec) ** 2).sum(-1)  # (B, M, Cn)
    dist = bn(dist.reshape(-1, 1)).reshape(dist.shape)
    weights = continuous_knn_exact(dist / temp[..., None], k)  # (k, B, M, Cn)
    xc = xq[:, cand]  # (B, M, Cn, Dx)
    z = torch.einsum("kbmc,bmcd->bkdm", weights.to(xc.dtype), xc)  # (B, k, Dx, M)
    hp, wp = g.padded_size
    folded = F.fold(z.reshape(b * k, -1, g.num_patches), (hp, wp), patch, stride=stride)
    folded = folded / g.coverage(x.device, x.dtype)
    return g.crop(folded).reshape(b, k, c, h, w)
