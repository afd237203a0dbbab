"""N3 aggregation by spatial blocks of queries and dense GEMMs (the fast path).

Queries are grouped into ``bq1 x bq2`` blocks of the patch grid. The search windows of a
block's queries all lie inside one rectangle of the grid, its *union* (at most
``bq + window - 1`` patches per side), so distances and aggregation for the whole block are
two dense matrix products against the union's patches, with a mask for candidates outside a
query's own window. Nothing of size (queries x candidates x patch) is ever built: memory per
chunk of blocks is bounded by ``max_chunk_bytes`` and the whole-image buffers are the
unfolded patches (linear in pixels).

Blocks are all the same size so that a chunk runs as one batched GEMM; the last block of a
row or column is shifted back to fit, and queries it shares with the previous block are
masked out of the aggregation ("owned" mask) so that every query is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from n3cli.ops.geometry import PatchGrid
from n3cli.ops.knn import continuous_knn

DEFAULT_BLOCK = 4  # measured fastest on CPU for the paper geometry (bench/n3_speed.py)
DEFAULT_CHUNK_BYTES = 16 * 2**20  # smaller chunks stay in cache: faster than 64 MiB on CPU
# On GPUs the cost is kernel launches, not cache: the default becomes this there.
DEFAULT_GPU_CHUNK_BYTES = 256 * 2**20


@dataclass
class _Axis:
    """Block layout along one axis of the patch grid."""

    queries: torch.Tensor  # (nblk, bq) grid coordinates of each block's queries
    owned: torch.Tensor  # (nblk, bq) bool: the block is responsible for this query
    cands: torch.Tensor  # (nblk, U) grid coordinates of the union rectangle
    valid: torch.Tensor  # (nblk, bq, U) bool: candidate inside the query's window


def _axis_plan(g: PatchGrid, axis: int, block: int) -> _Axis:
    n = g.shape[axis]
    w = g.window_shape[axis]
    bq = min(block, n)
    u = min(bq + w - 1, n)
    starts = torch.arange(0, n, bq)
    starts = torch.minimum(starts, torch.tensor(n - bq))
    queries = starts[:, None] + torch.arange(bq)[None, :]
    prev_end = torch.cat([torch.zeros(1, dtype=torch.long), (starts[:-1] + bq)])
    owned = queries >= prev_end[:, None]
    wstart = g.window_start(queries, axis)  # (nblk, bq)
    ustart = torch.minimum(wstart[:, 0], torch.tensor(n - u))
    cands = ustart[:, None] + torch.arange(u)[None, :]
    c = cands[:, None, :]
    valid = (c >= wstart[:, :, None]) & (c < wstart[:, :, None] + w)
    return _Axis(queries, owned, cands, valid)


def _distance_bn(dist: torch.Tensor, valid: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
    """Apply the distance BatchNorm1d(1) to the valid entries of ``dist``."""
    if bn.training or bn.running_mean is None:
        # Batch statistics over the allowed candidates only, as if they were one flat
        # (N, 1) batch (what the dense upstream formulation normalises over).
        flat = bn(dist[valid].reshape(-1, 1)).reshape(-1)
        out = torch.zeros_like(dist)
        return out.masked_scatter(valid, flat)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    return dist * scale + shift


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
        from n3cli.ops.cells import n3_aggregate_cells  # cells reuses this module's plan

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
    n1, n2 = g.shape
    dev = x.device
    compute_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xq = g.unfold(x).transpose(1, 2).contiguous()  # (B, M, Dx)
    eq = g.unfold(e.to(compute_dtype)).transpose(1, 2).contiguous()  # (B, M, De)
    temp = 0.1 * torch.exp(g.patch_mean(log_temp.to(compute_dtype)))  # (B, M)
    dx = xq.shape[-1]
    de = eq.shape[-1]

    training = bn.training
    if training:
        block = max(n1, n2)  # one block, one chunk: exact batch statistics
    rows = _axis_plan(g, 0, block)
    cols = _axis_plan(g, 1, block)
    nbr, bq1 = rows.queries.shape
    nbc, bq2 = cols.queries.shape
    u1, u2 = rows.cands.shape[1], cols.cands.shape[1]
    nq, nc = bq1 * bq2, u1 * u2
    nblocks = nbr * nbc

    # Per-pixel destinations of each query patch's p*p values in the padded image.
    hp, wp = g.padded_size
    pr = torch.arange(patch)
    local = (pr[:, None] * wp + pr[None, :]).reshape(-1)  # (p*p,)

    # Bytes held per block in one chunk (float32): union patches of x and e, distances and
    # k weight maps, k aggregated patches per query.
    per_block = 4 * b * (nc * (dx + de) + (k + 2) * nq * nc + k * nq * dx)
    chunk = nblocks if training else max(1, min(nblocks, max_chunk_bytes // max(per_block, 1)))

    out = torch.zeros(b, k * c, hp * wp, device=dev, dtype=compute_dtype)
    self_mask_needed = g.excludes_self
    for start in range(0, nblocks, chunk):
        ids = torch.arange(start, min(start + chunk, nblocks))
        br, bc = ids // nbc, ids % nbc
        qr, qc = rows.queries[br], cols.queries[bc]  # (nb, bq1), (nb, bq2)
        cr, cc = rows.cands[br], cols.cands[bc]  # (nb, u1), (nb, u2)
        qidx = (qr[:, :, None] * n2 + qc[:, None, :]).reshape(-1, nq).to(dev)
        cidx = (cr[:, :, None] * n2 + cc[:, None, :]).reshape(-1, nc).to(dev)
        valid = rows.valid[br][:, :, None, :, None] & cols.valid[bc][:, None, :, None, :]
        valid = valid.reshape(-1, nq, nc)
        if self_mask_needed:
            qflat = (qr[:, :, None] * n2 + qc[:, None, :]).reshape(-1, nq, 1)
            cflat = (cr[:, :, None] * n2 + cc[:, None, :]).reshape(-1, 1, nc)
            valid = valid & (qflat != cflat)
        valid = valid.to(dev)
        owned = (rows.owned[br][:, :, None] & cols.owned[bc][:, None, :]).reshape(-1, nq).to(dev)

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
        dist = _distance_bn(dist, validb, bn)
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
