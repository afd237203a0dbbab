"""N3 aggregation by spatial blocks of queries and dense GEMMs (the fast path).

Queries are grouped into blocks of the patch grid whose search windows share one union
rectangle (:mod:`n3cli.ops.plan`), so distances and aggregation for a whole block are two
dense matrix products against the union's patches, with a mask for candidates outside a
query's own window. Nothing of size (queries x candidates x patch) is ever built: memory
per chunk of blocks is bounded by ``max_chunk_bytes`` and the whole-image buffers are the
unfolded patches (linear in pixels).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from n3cli.ops.cells import n3_aggregate_cells
from n3cli.ops.geometry import PatchGrid
from n3cli.ops.knn import continuous_knn
from n3cli.ops.plan import BlockPlan, distance_bn

DEFAULT_BLOCK = 4  # measured fastest on CPU for the paper geometry (bench/n3_speed.py)
DEFAULT_CHUNK_BYTES = 16 * 2**20  # smaller chunks stay in cache: faster than 64 MiB on CPU
# On GPUs the cost is kernel launches, not cache: the default becomes this there.
DEFAULT_GPU_CHUNK_BYTES = 256 * 2**20


def n3_aggregate_blocked(
    x: torch.Tensor,
    e: torch.Tensor,
    log_temp: torch.Tensor,
    bn: nn.BatchNorm1d,
    k: int,
    patch: int = 10,
    stride: int = 5,
    window: int = 15,
    block: int = DEFAULT_BLOCK,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """Same contract as :func:`n3cli.ops.reference.n3_aggregate_reference`.

    When ``patch`` is a multiple of ``stride`` (the paper's 10 / 5) the work goes to the
    cell kernel (:mod:`n3cli.ops.cells`), which needs several times fewer operations;
    other geometries use the patch-space GEMMs below.
    In training mode (``bn.training``) all blocks go through one chunk so that the
    distance BatchNorm sees the statistics of the whole batch, as upstream's dense
    formulation does; this is what training crops (80 x 80: one 15 x 15 grid) need.
    """
    if x.device.type != "cpu" and max_chunk_bytes == DEFAULT_CHUNK_BYTES:
        max_chunk_bytes = DEFAULT_GPU_CHUNK_BYTES
    if patch % stride == 0:
        return n3_aggregate_cells(x, e, log_temp, bn, k, patch, stride, window, block,
                                  max_chunk_bytes)
    return n3_aggregate_patches(x, e, log_temp, bn, k, patch, stride, window, block,
                                max_chunk_bytes)


def n3_aggregate_patches(
    x: torch.Tensor,
    e: torch.Tensor,
    log_temp: torch.Tensor,
    bn: nn.BatchNorm1d,
    k: int,
    patch: int = 10,
    stride: int = 5,
    window: int = 15,
    block: int = DEFAULT_BLOCK,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> torch.Tensor:
    """The patch-space blocked kernel (any patch / stride); see the module docstring."""
    b, c, h, w = x.shape
    g = PatchGrid(h, w, patch, stride, window)
    n2 = g.shape[1]
    dev = x.device
    compute_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xq = g.unfold(x).transpose(1, 2).contiguous()  # (B, M, Dx)
    eq = g.unfold(e.to(compute_dtype)).transpose(1, 2).contiguous()  # (B, M, De)
    temp = 0.1 * torch.exp(g.patch_mean(log_temp.to(compute_dtype)))  # (B, M)
    dx = xq.shape[-1]
    de = eq.shape[-1]

    plan = BlockPlan(g, block, bn.training)
    nq, nc = plan.nq, plan.nc

    # Per-pixel destinations of each query patch's p*p values in the padded image.
    hp, wp = g.padded_size
    pr = torch.arange(patch)
    local = (pr[:, None] * wp + pr[None, :]).reshape(-1)  # (p*p,)

    # Bytes held per block in one chunk (float32): union patches of x and e, distances and
    # k weight maps, k aggregated patches per query.
    per_block = 4 * b * (nc * (dx + de) + (k + 2) * nq * nc + k * nq * dx)

    out = torch.zeros(b, k * c, hp * wp, device=dev, dtype=compute_dtype)
    for ch in plan.chunks(per_block, max_chunk_bytes):
        qidx = plan.query_index(ch).to(dev)
        cidx = plan.candidate_index(ch).to(dev)
        valid = plan.valid(ch).to(dev)
        owned = plan.owned(ch).reshape(-1, nq).to(dev)

        eqb = eq[:, qidx]  # (B, nb, nq, De)
        ecb = eq[:, cidx]  # (B, nb, nc, De)
        # Distances are translation invariant: centring on the union's mean keeps the
        # expanded form |q|^2 + |c|^2 - 2 q.c from cancelling catastrophically.
        centre = ecb.mean(dim=2, keepdim=True)
        eqb = eqb - centre
        ecb = ecb - centre
        cross = torch.matmul(eqb, ecb.transpose(-1, -2))  # (B, nb, nq, nc)
        dist = 2 * cross - (eqb * eqb).sum(-1)[..., None] - (ecb * ecb).sum(-1)[..., None, :]
        validb = valid.unsqueeze(0).expand_as(dist)
        dist = distance_bn(dist, validb, bn)
        logits = dist / temp[:, qidx][..., None]
        logits = logits.masked_fill(~validb, float("-inf"))
        weights = continuous_knn(logits, k)  # (k, B, nb, nq, nc)
        weights = weights * owned[None, None, :, :, None].to(weights.dtype)
        weights = weights.permute(1, 2, 0, 3, 4).reshape(b, -1, k * nq, nc)
        xcb = xq[:, cidx].to(weights.dtype)  # (B, nb, nc, Dx)
        z = torch.matmul(weights, xcb)  # (B, nb, k*nq, Dx)
        nb = z.shape[1]
        z = z.reshape(b, nb, k, nq, c, patch * patch).permute(0, 2, 4, 1, 3, 5)
        z = z.reshape(b, k * c, nb * nq * patch * patch)
        # Top-left pixel of every query patch, then its p*p pixels.
        qrow, qcol = qidx // n2, qidx % n2
        corner = (qrow * stride) * wp + qcol * stride  # (nb, nq)
        dest = (corner[..., None] + local.to(dev)).reshape(-1)
        out.index_add_(2, dest, z.to(out.dtype))

    out = out.reshape(b * k, c, hp, wp) / g.coverage(dev, out.dtype)
    return g.crop(out).reshape(b, k, c, h, w).to(x.dtype)
