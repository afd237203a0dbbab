"""N3 aggregation on stride cells: the fast path when the patch is a multiple of the stride.

With ``patch = m * stride`` the zero-padded image is a grid of ``stride x stride`` *cells*
and every patch is an ``m x m`` square of cells. Two identities then cut the work:

- distances: ``||E_q - E_c||^2`` is the sum over the ``m*m`` cell positions of cell-level
  distances, and cell pairs are shared by many (query, candidate) pairs, so one GEMM over
  the cells of a block of queries against the cells of their window union (``m*m`` times
  fewer dimensions) followed by ``m*m`` shifted slice sums gives every patch distance;
- aggregation + fold: an output cell receives ``sum_q sum_c W[q, c] * cell(c + (a - q))``
  over the ``m*m`` queries ``q`` whose patch holds it, so the weights are first scattered
  (``m*m`` shifted slice adds) into a cell-to-cell matrix and one GEMM against the union's
  cells gives the already-folded output: the GEMM is ``m*m`` times smaller than the
  patch-space one and the fold adds whole cells, not pixels.

Blocks, chunks, the "owned" mask and the training-mode single chunk are the plan of
:mod:`n3cli.ops.plan`, shared with the patch-space kernel of :mod:`n3cli.ops.blocked`. Everything is plain differentiable
torch, so autograd provides the backward pass.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.ops.geometry import PatchGrid
from n3cli.ops.knn import knn_rounds
from n3cli.ops.plan import BlockPlan, distance_bn


def to_cells(t: torch.Tensor, g: PatchGrid) -> torch.Tensor:
    """(B, C, H, W) -> (B, N1*N2, C*s*s): the zero-padded image as rows of stride cells."""
    s = g.stride
    tp = F.pad(t, g.pad)
    b, c, hp, wp = tp.shape
    n1, n2 = hp // s, wp // s
    return tp.reshape(b, c, n1, s, n2, s).permute(0, 2, 4, 1, 3, 5).reshape(b, n1 * n2, c * s * s)


def gather_cells(cells: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """(B, N, D) rows at ``index`` (nb, n) -> (B, nb, n, D). ``index_select`` copies whole
    rows, much faster on the CPU than advanced indexing ``cells[:, index]`` (the profile in
    docs/PERFORMANCE.md, "The kNN on the weights")."""
    b, _, d = cells.shape
    return torch.index_select(cells, 1, index.reshape(-1)).view(b, *index.shape, d)


def cell_coverage(g: PatchGrid, device=None, dtype=torch.float32) -> torch.Tensor:
    """(N1*N2,) number of patches holding each cell (the fold's divisor, per cell)."""
    m = g.patch // g.stride
    n1, n2 = g.shape
    per_axis = []
    for n in (n1, n2):
        i = torch.arange(n + m - 1, device=device)
        per_axis.append((torch.minimum(i, torch.tensor(n - 1, device=device))
                         - torch.clamp(i - m + 1, min=0) + 1).to(dtype))
    return (per_axis[0][:, None] * per_axis[1][None, :]).reshape(-1)


def n3_aggregate_cells(
    x: torch.Tensor,
    e: torch.Tensor,
    log_temp: torch.Tensor,
    bn: nn.BatchNorm1d,
    k: int,
    patch: int,
    stride: int,
    window: int,
    block: int,
    max_chunk_bytes: int,
) -> torch.Tensor:
    """Same contract as :func:`n3cli.ops.reference.n3_aggregate_reference`."""
    if patch % stride:
        raise ValueError("the cell kernel needs patch to be a multiple of stride")
    m = patch // stride
    b, c, h, w = x.shape
    g = PatchGrid(h, w, patch, stride, window)
    n1, n2 = g.shape
    ncl1, ncl2 = n1 + m - 1, n2 + m - 1
    dev = x.device
    cdt = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xc = to_cells(x.to(cdt), g)  # (B, Ncells, Dx) Dx = C*s*s
    ec = to_cells(e.to(cdt), g)  # (B, Ncells, De)
    temp = 0.1 * torch.exp(g.patch_mean(log_temp.to(cdt)))  # (B, M)
    dx, de = xc.shape[-1], ec.shape[-1]

    training = bn.training
    plan = BlockPlan(g, block, training)
    rows, cols = plan.rows, plan.cols
    bq1, bq2, u1, u2 = plan.bq1, plan.bq2, plan.u1, plan.u2
    q1c, q2c, c1c, c2c = bq1 + m - 1, bq2 + m - 1, u1 + m - 1, u2 + m - 1
    nq, nc, qcells, ccells = plan.nq, plan.nc, q1c * q2c, c1c * c2c

    # float32 values held per block in one chunk: gathered cells, cell distances, the
    # patch distances with the k weight maps and knn temporaries, the cell weight matrix
    # and the aggregated cells.
    per_block = 4 * b * (ccells * (dx + de) + qcells * (de + ccells) + (k + 6) * nq * nc
                         + k * qcells * (ccells + dx))

    out = torch.zeros(b, ncl1 * ncl2, k * dx, device=dev, dtype=cdt)
    inf = float("-inf")
    row_bias = torch.zeros(rows.valid.shape, dtype=cdt).masked_fill_(~rows.valid, inf).to(dev)
    col_bias = torch.zeros(cols.valid.shape, dtype=cdt).masked_fill_(~cols.valid, inf).to(dev)
    ar_q1, ar_q2 = torch.arange(q1c), torch.arange(q2c)
    ar_c1, ar_c2 = torch.arange(c1c), torch.arange(c2c)
    for ch in plan.chunks(per_block, max_chunk_bytes):
        nb = len(ch)
        br, bc, qr, qc, cr, cc = ch.br, ch.bc, ch.qr, ch.qc, ch.cr, ch.cc
        qcell = ((qr[:, :1] + ar_q1)[:, :, None] * ncl2 + (qc[:, :1] + ar_q2)[:, None, :])
        ccell = ((cr[:, :1] + ar_c1)[:, :, None] * ncl2 + (cc[:, :1] + ar_c2)[:, None, :])
        qcell = qcell.reshape(nb, qcells).to(dev)
        ccell = ccell.reshape(nb, ccells).to(dev)
        if training:  # explicit mask: the distance BN's batch statistics need it
            valid = plan.valid(ch).to(dev)
        owned = plan.owned(ch).to(dev)
        qidx = plan.query_index(ch).to(dev)

        # Cell-level distances, centred on the union's mean (translation invariance) so
        # that |q|^2 + |c|^2 - 2 q.c does not cancel catastrophically.
        ecq = gather_cells(ec, qcell)  # (B, nb, Qc, De), fresh copies: centred in place
        ecc = gather_cells(ec, ccell)  # (B, nb, Cc, De)
        centre = ecc.mean(dim=2, keepdim=True)
        ecq.sub_(centre)
        ecc.sub_(centre)
        dcell = torch.matmul(ecq, ecc.transpose(-1, -2)).mul_(2)
        # square().sum() rather than linalg.vecdot: 5x faster on the CPU for these shapes.
        dcell = dcell - (ecq.square().sum(-1)[..., None] + ecc.square().sum(-1)[..., None, :])
        dcell = dcell.reshape(b, nb, q1c, q2c, c1c, c2c)
        dist = None
        for o1 in range(m):
            for o2 in range(m):
                part = dcell[:, :, o1:o1 + bq1, o2:o2 + bq2, o1:o1 + u1, o2:o2 + u2]
                dist = part if dist is None else dist + part
        dist = dist.reshape(b, nb, nq, nc)

        if training:
            validb = valid.unsqueeze(0).expand_as(dist)
            logits = distance_bn(dist, validb, bn) / temp[:, qidx][..., None]
            logits = logits.masked_fill(~validb, float("-inf"))
        else:
            # BN(d) / T = d * (scale / T) + shift / T: one fused pass, then the window
            # masks as two broadcast -inf biases and the query itself by a scatter.
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
            inv_t = 1.0 / temp[:, qidx]  # (B, nb, nq)
            logits = torch.addcmul((shift * inv_t)[..., None], dist, (scale * inv_t)[..., None])
            lv = logits.view(b, nb, bq1, bq2, u1, u2)
            lv.add_(row_bias[br.to(dev)][None, :, :, None, :, None])
            lv.add_(col_bias[bc.to(dev)][None, :, None, :, None, :])
            if g.excludes_self:
                sidx = ((qr - cr[:, :1])[:, :, None] * u2 + (qc - cc[:, :1])[:, None, :])
                sidx = sidx.reshape(1, nb, nq, 1).to(dev).expand(b, nb, nq, 1)
                logits.scatter_(-1, sidx, float("-inf"))

        # Scatter the patch weights to cell weights: query cell q+o takes candidate cell
        # c+o. The k rounds side by side, masked by "owned" once, go in with m*m adds
        # (k*m*m strided adds of one round each cost more: bench/knn_rounds.py).
        own = owned[None, :, :, :, None, None, None].to(logits.dtype)
        if logits.requires_grad:
            # Out of place for autograd: every in-place write into a slice would make the
            # backward pass clone the whole buffer's gradient (CopySlices) once per write.
            wk = torch.stack([w.view(b, nb, bq1, bq2, u1, u2) for w in knn_rounds(logits, k)], 4)
            wk = wk * own
            a = sum(F.pad(wk, (o2, m - 1 - o2, o1, m - 1 - o1, 0, 0, o2, m - 1 - o2, o1, m - 1 - o1))
                    for o1 in range(m) for o2 in range(m))
        else:  # in place: faster than the padded sums for the paper's 15x15 window
            wk = torch.empty(b, nb, bq1, bq2, k, u1, u2, device=dev, dtype=logits.dtype)
            for r, w in enumerate(knn_rounds(logits, k)):  # each round freed once copied
                wk[:, :, :, :, r] = w.view(b, nb, bq1, bq2, u1, u2)
            wk.mul_(own)
            a = torch.zeros(b, nb, q1c, q2c, k, c1c, c2c, device=dev, dtype=wk.dtype)
            for o1 in range(m):
                for o2 in range(m):
                    a[:, :, o1:o1 + bq1, o2:o2 + bq2, :, o1:o1 + u1, o2:o2 + u2].add_(wk)
        z = torch.matmul(a.reshape(b, nb, qcells * k, ccells), gather_cells(xc, ccell))  # (B,nb,Qc*k,Dx)
        out.index_add_(1, qcell.reshape(-1), z.reshape(b, nb * qcells, k * dx))

    out = out.div_(cell_coverage(g, dev, out.dtype)[None, :, None])
    # Cells back to pixels: a depth-to-space of the (k, c, s, s) cell contents by
    # pixel_shuffle, whose result has the k*c channels innermost (the layout of the
    # channels_last buffer N3Block writes them into), instead of a 7-d permuted copy.
    img = F.pixel_shuffle(out.view(b, ncl1, ncl2, k * dx).permute(0, 3, 1, 2), stride)
    return g.crop(img.unflatten(1, (k, c))).to(x.dtype)
