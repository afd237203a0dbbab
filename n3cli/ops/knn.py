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
_ONE_MINUS_W_MIN = -math.expm1(_W_MAX)  # the same bound on 1 - W


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

    The recursion ``logits += log(1 - W)`` is run on the weights themselves: the next
    round's weights are ``softmax(logits + log(1 - W)) = normalise(W * (1 - W))``, so
    after the first softmax each round is a few cheap passes (multiplies, two row sums, a
    divide) instead of a log-softmax, an ``exp``, an arg-max and a ``log1p``. That is what
    matters on the CPU, where the ``exp`` of the masked (``-inf``) candidates takes the
    slow path of the vectorised exp and the arg-max reduction is slow
    (``python bench/knn_rounds.py`` times both recursions).

    ``1 - W`` loses precision only where ``W`` is close to 1; the weights of a row sum to
    1, so only an entry above 1/2 can be, and there ``1 - W`` is taken as the sum of the
    row's other weights (no cancellation). As in :func:`log1mexp`, ``1 - W`` is kept at
    least 1.19e-7 (the released weights were trained with ``W <= 1 - eps``), so a
    candidate that takes all the weight (e.g. a grid with a single candidate) keeps it.
    Equal to :func:`continuous_knn_exact` up to rounding, gradients included, except where
    a weight is very close to 1: there the log-space recursion loses ``1 - W`` (in float64
    within ~1e-10 of 1, in float32 within ~1e-6, where its next weights lose most digits),
    and this one stays exact to rounding (tests check both against 40-digit arithmetic).
    Consumers may use each weight before the next is computed; the yielded tensors are
    never modified afterwards.
    """
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    weight = torch.softmax(logits, dim=-1)
    for r in range(k):
        yield weight
        if r == k - 1:
            break  # the last update would be unused
        # Float arithmetic only: boolean masks (gt, where, masked_fill) cost more than the
        # arithmetic on the CPU. round(W) is 1 exactly where W > 1/2, else 0.
        big = torch.round(weight)
        small = torch.addcmul(weight, weight, big, value=-1.0)  # W, and 0 at the big entry
        rest = small.sum(dim=-1, keepdim=True)  # 1 - W of the row's big entry, if any
        nxt = torch.addcmul(small, small, small, value=-1.0)  # W (1 - W) where W <= 1/2
        nxt.addcmul_(weight * big, rest.clamp(min=_ONE_MINUS_W_MIN))  # ... and at the big one
        weight = nxt / nxt.sum(dim=-1, keepdim=True)


def continuous_knn(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Return the k relaxed neighbour-weight vectors for each row of ``logits``.

    ``logits`` has candidates on the last dimension, ``-inf`` where a candidate is not
    allowed. The result has shape ``(k, *logits.shape)``; each slice sums to 1 over the
    candidates. The rounds run in float32 (or float64) whatever the input dtype; see
    :func:`knn_rounds` for how.
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
