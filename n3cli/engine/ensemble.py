"""Geometric self-ensemble: average a model's outputs over flips and 90-degree rotations.

Denoisers are not exactly equivariant to the dihedral group, so averaging the outputs of
the transformed inputs (each mapped back) removes part of their error, at n times the
cost. The transforms act on the whole image, before any tiling, so exact tiling stays
exact for every member.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

ENSEMBLE_SIZES = (1, 2, 4, 8)
# (quarter turns, horizontal flip), in the order the sizes take them.
_DIHEDRAL = [(0, False), (0, True), (1, False), (1, True),
             (2, False), (2, True), (3, False), (3, True)]


def _apply(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, turns, dims=(-2, -1)) if turns else x


def _invert(x: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    if turns:
        x = torch.rot90(x, -turns, dims=(-2, -1))
    return x.flip(-1) if flip else x


def check_ensemble(n: int) -> int:
    """``n`` if it is a supported ensemble size, else ValueError."""
    if n not in ENSEMBLE_SIZES:
        raise ValueError(f"ensemble must be one of {', '.join(map(str, ENSEMBLE_SIZES))}, got {n}")
    return n


def self_ensemble(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, n: int = 8,
                  allowed: Sequence[int] = tuple(range(8))) -> torch.Tensor:
    """Mean over the first ``n`` dihedral transforms T of ``T^-1(fn(T(x)))`` (x: N x C x H x W).

    ``allowed``: indices into the dihedral group (the order above) the model permits, from
    its descriptor (a model that is not isotropic, e.g. one on Bayer planes, allows fewer);
    asking for more than it allows is a ValueError.
    """
    check_ensemble(n)
    if n == 1:
        return fn(x)
    ops = [_DIHEDRAL[i] for i in allowed][:n]
    if len(ops) < n:
        raise ValueError(f"this model allows an ensemble of at most {len(ops)} transforms")
    total = None
    for turns, flip in ops:
        y = _invert(fn(_apply(x, turns, flip).contiguous()), turns, flip)
        total = y if total is None else total + y
    return total / n
