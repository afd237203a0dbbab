"""How the two fast N3 kernels split the patch grid into query blocks and chunks.

Queries are grouped into ``bq1 x bq2`` blocks of the patch grid. The search windows of a
block's queries all lie inside one rectangle of the grid, its *union* (at most
``bq + window - 1`` patches per side). Blocks are all the same size so that a chunk of
them runs as one batched GEMM; the last block of a row or column is shifted back to fit,
and queries it shares with the previous block are masked out of the aggregation
("owned" mask) so that every query is counted once. Both :mod:`n3cli.ops.blocked`
(patch space) and :mod:`n3cli.ops.cells` (stride cells) run on this plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn as nn

from n3cli.ops.geometry import PatchGrid


@dataclass
class AxisPlan:
    """Block layout along one axis of the patch grid."""

    queries: torch.Tensor  # (nblk, bq) grid coordinates of each block's queries
    owned: torch.Tensor  # (nblk, bq) bool: the block is responsible for this query
    cands: torch.Tensor  # (nblk, U) grid coordinates of the union rectangle
    valid: torch.Tensor  # (nblk, bq, U) bool: candidate inside the query's window


def axis_plan(g: PatchGrid, axis: int, block: int) -> AxisPlan:
    """Blocks of ``block`` queries along ``axis`` (fewer where the grid is smaller)."""
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
    return AxisPlan(queries, owned, cands, valid)


@dataclass
class Chunk:
    """Blocks ``br`` x ``bc`` (row / column block indices, aligned) run together."""

    br: torch.Tensor  # (nb,) row block of each block in the chunk
    bc: torch.Tensor  # (nb,) column block
    qr: torch.Tensor  # (nb, bq1) query rows
    qc: torch.Tensor  # (nb, bq2) query columns
    cr: torch.Tensor  # (nb, u1) union rows
    cc: torch.Tensor  # (nb, u2) union columns

    def __len__(self) -> int:
        return len(self.br)


class BlockPlan:
    """Query blocks over a :class:`PatchGrid` and their chunking under a memory bound.

    In training mode the whole grid is one block and one chunk, so that the distance
    BatchNorm sees the statistics of the whole batch, as upstream's dense formulation
    does (training crops of 80 x 80 are one 15 x 15 grid)."""

    def __init__(self, g: PatchGrid, block: int, training: bool):
        self.grid, self.training = g, training
        if training:
            block = max(g.shape)
        self.rows, self.cols = axis_plan(g, 0, block), axis_plan(g, 1, block)
        self.nbr, self.bq1 = self.rows.queries.shape
        self.nbc, self.bq2 = self.cols.queries.shape
        self.u1, self.u2 = self.rows.cands.shape[1], self.cols.cands.shape[1]
        self.nq, self.nc = self.bq1 * self.bq2, self.u1 * self.u2
        self.nblocks = self.nbr * self.nbc

    def chunks(self, per_block_bytes: int, max_chunk_bytes: int) -> Iterator[Chunk]:
        """Consecutive blocks, as many per chunk as ``max_chunk_bytes`` holds (all in training)."""
        n = self.nblocks
        size = n if self.training else max(1, min(n, max_chunk_bytes // max(per_block_bytes, 1)))
        for start in range(0, n, size):
            ids = torch.arange(start, min(start + size, n))
            br, bc = ids // self.nbc, ids % self.nbc
            yield Chunk(br, bc, self.rows.queries[br], self.cols.queries[bc],
                        self.rows.cands[br], self.cols.cands[bc])

    def query_index(self, ch: Chunk) -> torch.Tensor:
        """(nb, nq) flat grid index of every query of the chunk's blocks."""
        return (ch.qr[:, :, None] * self.grid.shape[1] + ch.qc[:, None, :]).reshape(len(ch), self.nq)

    def candidate_index(self, ch: Chunk) -> torch.Tensor:
        """(nb, nc) flat grid index of every union patch of the chunk's blocks."""
        return (ch.cr[:, :, None] * self.grid.shape[1] + ch.cc[:, None, :]).reshape(len(ch), self.nc)

    def owned(self, ch: Chunk) -> torch.Tensor:
        """(nb, bq1, bq2) bool: the queries each block aggregates."""
        return self.rows.owned[ch.br][:, :, None] & self.cols.owned[ch.bc][:, None, :]

    def valid(self, ch: Chunk) -> torch.Tensor:
        """(nb, nq, nc) bool: candidate in the query's window, and not the query itself
        where the grid excludes self-matches."""
        nb = len(ch)
        valid = self.rows.valid[ch.br][:, :, None, :, None] & self.cols.valid[ch.bc][:, None, :, None, :]
        valid = valid.reshape(nb, self.nq, self.nc)
        if self.grid.excludes_self:
            valid = valid & (self.query_index(ch)[:, :, None] != self.candidate_index(ch)[:, None, :])
        return valid


def distance_bn(dist: torch.Tensor, valid: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
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
