"""Continuous k-nearest-neighbour selection (N3Net paper, Eqs. 8-10)."""

from __future__ import annotations

import math
from typing import Iterator

import torch

_LOG_HALF = -math.log(2.0)
# log(1 - 1.19e-7): the released weights were trained with W clamped to [eps, 1-eps];
# clamping w there keeps log(1 - exp(w)) finite when one candidate takes all the weight
# (e.g. a grid with a single candidate), where the exact value would be -inf and the
# next round's softmax NaN. Below this bound the stable formula is exact.
_W_MAX = math.log1p(-1.19e-7)


def log1mexp(w: torch.Tensor) -> torch.Tensor:
    """Stable ``log(1 - exp(w))`` for ``w <= 0`` (Maechler's two-branch formula)."""
    w = w.clamp(max=_W_MAX)
    small = w < _LOG_HALF
    # Evaluate each branch only where it is stable; torch.where needs both finite.
    a = torch.log1p(-torch.exp(torch.where(small, w, torch.full_like(w, -1.0))))
    b = torch.log(-torch.expm1(torch.where(small, torch.full_like(w, -0.1), w)))
    return torch.where(small, a, b)


def knn_rounds(logits: torch.Tensor, k: int) -> Iterator[torch.Tensor]:
    """Yield the k relaxed neighbour-weight vectors of :func:`continuous_knn` one by one.

    ``log(1 - exp(w))`` is evaluated as ``log1p(-W)`` with ``W = exp(w)`` (already
    needed as the output) everywhere but at each row's largest weight, which gets the
    two-branch :func:`log1mexp`: the weights of a row sum to 1, so only its largest can
    exceed 1/2, the one place where ``log1p(-W)`` would lose precision. The result equals
    :func:`log1mexp` on every entry (up to rounding) for a fraction of the passes.
    Consumers may use each weight before the next is computed (no stacking copy).
    """
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    grad = logits.requires_grad
    for r in range(k):
        w = torch.log_softmax(logits, dim=-1)
        weight = torch.exp(w)
        yield weight
        if r == k - 1:
            break  # the last update would be unused
        wmax, arg = w.max(dim=-1, keepdim=True)
        del w
        # Clamping at 1/2 changes no entry that is kept (only the row maximum can exceed
        # it) but keeps log1p finite where W == 1, whose gradient would otherwise be NaN.
        if grad:
            step = torch.log1p(torch.clamp(-weight, min=-0.5)).scatter(-1, arg, log1mexp(wmax))
            logits = logits + step
        else:
            step = torch.neg(weight).clamp_(min=-0.5).log1p_().scatter_(-1, arg, log1mexp(wmax))
            logits = logits + step if r == 0 else logits.add_(step)


def continuous_knn(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Return the k relaxed neighbour-weight vectors for each row of ``logits``.

    ``logits`` has candidates on the last dimension, ``-inf`` where a candidate is not
    allowed. The result has shape ``(k, *logits.shape)``; each slice sums to 1 over the
    candidates. Softmax and log1mexp run in float32 (or float64) whatever the input dtype.
    See :func:`knn_rounds` for how log(1 - W) is evaluated.
    """
    return torch.stack(list(knn_rounds(logits, k)), dim=0)


def continuous_knn_exact(logits: torch.Tensor, k: int) -> torch.Tensor:
    """The plain recursion with :func:`log1mexp` on every entry (the reference's)."""
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    out = []
    for _ in range(k):
        w = torch.log_softmax(logits, dim=-1)
        out.append(torch.exp(w))
        logits = logits + log1mexp(w)
    return torch.stack(out, dim=0)
