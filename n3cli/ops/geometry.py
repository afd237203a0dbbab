"""Patch-grid geometry shared by every N3 implementation.

An image of H x W pixels is zero-padded so that patches of ``patch`` x ``patch`` pixels at
``stride`` tile it exactly (spec section 2.3), giving an ``n1 x n2`` grid of patches in
row-major order. Each query patch searches a ``window`` x ``window`` block of the grid,
*shifted* (not shrunk) to stay inside the grid. Grids smaller than the window (images under
80 px on a side for the paper geometry) shrink the window to the whole grid dimension
instead: there is nothing else to search.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _pad_total(size: int, patch: int, stride: int) -> int:
    # Upstream rule: make size - patch a multiple of the stride. Sizes below one patch
    # (not reachable upstream) are first padded up to one patch.
    base = max(size, patch)
    return (base - size) + (-(base - patch)) % stride


@dataclass(frozen=True)
class PatchGrid:
    """Geometry of the patch grid for an ``height`` x ``width`` image."""

    height: int
    width: int
    patch: int = 10
    stride: int = 5
    window: int = 15

    @property
    def pad(self) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) zero padding, as ``F.pad`` expects."""
        ph = _pad_total(self.height, self.patch, self.stride)
        pw = _pad_total(self.width, self.patch, self.stride)
        return (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)

    @property
    def padded_size(self) -> tuple[int, int]:
        left, right, top, bottom = self.pad
        return self.height + top + bottom, self.width + left + right

    @property
    def shape(self) -> tuple[int, int]:
        """Number of patches (n1, n2) along height and width."""
        hp, wp = self.padded_size
        return (hp - self.patch) // self.stride + 1, (wp - self.patch) // self.stride + 1

    @property
    def num_patches(self) -> int:
        n1, n2 = self.shape
        return n1 * n2

    @property
    def window_shape(self) -> tuple[int, int]:
        n1, n2 = self.shape
        return min(self.window, n1), min(self.window, n2)

    @property
    def excludes_self(self) -> bool:
        """The query is excluded from its own candidates unless it is the only patch."""
        w1, w2 = self.window_shape
        return w1 * w2 > 1

    @property
    def num_candidates(self) -> int:
        w1, w2 = self.window_shape
        return w1 * w2 - 1 if self.excludes_self else 1

    def window_start(self, index: torch.Tensor, axis: int) -> torch.Tensor:
        """First grid row (axis 0) or column (axis 1) of each query's search window."""
        n = self.shape[axis]
        w = self.window_shape[axis]
        return (index - self.window // 2).clamp(0, n - w)

    def unfold(self, t: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C*patch*patch, n1*n2) patches of the zero-padded image."""
        return F.unfold(F.pad(t, self.pad), self.patch, stride=self.stride)

    def patch_mean(self, t: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, n1*n2): mean over each (zero-padded) patch."""
        pooled = F.avg_pool2d(F.pad(t, self.pad), self.patch, stride=self.stride)
        return pooled.flatten(1)

    def coverage(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """(1, 1, Hp, Wp) number of patches covering each padded pixel."""
        hp, wp = self.padded_size
        ones = torch.ones(1, self.patch * self.patch, self.num_patches, device=device, dtype=dtype)
        return F.fold(ones, (hp, wp), self.patch, stride=self.stride)

    def crop(self, t: torch.Tensor) -> torch.Tensor:
        """Remove the padding from a (..., Hp, Wp) tensor."""
        left, _, top, _ = self.pad
        return t[..., top : top + self.height, left : left + self.width]

    def candidate_index(self) -> torch.Tensor:
        """(n1*n2, num_candidates) flat grid indices of every query's candidates.

        Materialises the full candidate list: meant for the reference implementation and
        tests, not for large images.
        """
        n1, n2 = self.shape
        w1, w2 = self.window_shape
        rows = torch.arange(n1)
        cols = torch.arange(n2)
        r0 = self.window_start(rows, 0)[:, None, None, None] + torch.arange(w1)[None, None, :, None]
        c0 = self.window_start(cols, 1)[None, :, None, None] + torch.arange(w2)[None, None, None, :]
        idx = (r0 * n2 + c0).reshape(n1 * n2, w1 * w2)
        if not self.excludes_self:
            return idx
        query = torch.arange(n1 * n2)[:, None]
        keep = idx != query
        return idx[keep].reshape(n1 * n2, w1 * w2 - 1)
