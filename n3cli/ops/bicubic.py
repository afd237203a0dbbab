"""Bicubic upsampling by an integer factor, exactly as MATLAB ``imresize`` computes it,
and translation-invariant: each of the ``s`` output phases has four fixed taps, so a tile
of an image upsamples to exactly the matching part of the whole image's result
(``bicubic-pytorch`` computes positions in float32, which drifts by ~1e-6 at x3 and
breaks exact tiling). MATLAB's cubic kernel (a = -0.5), output pixel ``x`` (0-based)
centred at input ``(x + 0.5) / s - 0.5``, symmetric padding at the borders."""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def _cubic(t: float) -> float:
    a = abs(t)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


@lru_cache(maxsize=None)
def _phases(scale: int) -> tuple[tuple[int, tuple[float, ...]], ...]:
    """Per output phase p: (offset of its first tap relative to i - 1, four weights)."""
    out = []
    for p in range(scale):
        d = (p + 0.5) / scale - 0.5
        f = math.floor(d)
        taps = [_cubic(d - (f + k)) for k in (-1, 0, 1, 2)]
        total = sum(taps)
        out.append((f, tuple(t / total for t in taps)))
    return tuple(out)


def _upsample_last_axis(x: torch.Tensor, scale: int) -> torch.Tensor:
    n = x.shape[-1]
    # Symmetric padding by 3 (MATLAB mirrors with the edge sample repeated).
    idx = torch.arange(-3, n + 3, device=x.device)
    idx = torch.where(idx < 0, -idx - 1, idx)
    idx = torch.where(idx >= n, 2 * n - idx - 1, idx).clamp(0, n - 1)
    xp = x.index_select(-1, idx)
    phases = []
    for f, w in _phases(scale):
        start = 3 + f - 1  # tap k = -1 relative to floor, at padded index i + 3 + f - 1
        acc = sum(wk * xp[..., start + k:start + k + n] for k, wk in enumerate(w))
        phases.append(acc)
    return torch.stack(phases, dim=-1).flatten(-2)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(..., H, W) -> (..., s*H, s*W): MATLAB ``imresize(x, s, 'bicubic')`` for integer s."""
    if scale == 1:
        return x
    y = _upsample_last_axis(x, scale)
    return _upsample_last_axis(y.transpose(-1, -2), scale).transpose(-1, -2)
