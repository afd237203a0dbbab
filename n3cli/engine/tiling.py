"""Tiled inference: run a model on tiles of a large image, exactly or with blending.

Tiles are described by a *core* (the output region a tile is responsible for; the cores
partition the image) and a *source* region (core plus context, what the model sees).

Exact mode: every output pixel depends on input pixels at most ``halo`` away
(:func:`n3cli.models.registry.dependency_radius`), and each N3 block cuts its input into
a patch grid whose zero padding depends on the input size. A tile reproduces the
whole-image output on its core when

1. its source extends at least ``halo`` past the core on every side that is not an image
   border (a side at a border *is* the border: same zero padding for convolutions and
   the same shifted search windows);
2. its patch grid coincides with the whole image's: the source starts at a multiple of
   the grid ``quantum`` (stride x space-to-depth factor) and its size is congruent to
   the image's size modulo the quantum, so that the grid's padding rule pads it exactly
   as it pads the whole image.

Blend mode: cores are extended by ``overlap`` on each side (aligned the same way) and
overlapping outputs are averaged with raised-cosine weights that vanish at the source
edges; cheaper than exact mode, exact only farther than ``halo`` from any tile edge.

On a device out-of-memory error the failing tile's core is split in four and retried.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable

import torch

from n3cli.errors import N3Error

Forward = Callable[[torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]

MODES = ("exact", "blend", "auto")
DEFAULT_BLEND_OVERLAP = 48
MIN_CORE = 16


@dataclass(frozen=True)
class Tile:
    """Source rows/cols ``[y0, y1) x [x0, x1)`` and core ``[cy0, cy1) x [cx0, cx1)``."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    @property
    def area(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)

    def scaled(self, s: int) -> "Tile":
        """The same tile in the coordinates of an output ``s`` times larger."""
        return Tile(*(v * s for v in (self.y0, self.y1, self.x0, self.x1,
                                      self.cy0, self.cy1, self.cx0, self.cx1)))


def axis_cores(n: int, tile: int, quantum: int = 1) -> list[tuple[int, int]]:
    """Split ``[0, n)`` into cores of ``tile`` pixels (a multiple of ``quantum``)."""
    if tile <= 0 or tile >= n:
        return [(0, n)]
    # As many cores as ``tile`` asks for, evened out (1024 at 256 is 4 x 256, not
    # 4 x 255 + 4), rounded up to the quantum.
    count = -(-n // tile)
    t = -(-n // count)
    t = max(quantum, t + (-t) % quantum)
    return [(s, min(s + t, n)) for s in range(0, n, t)]


def source_range(n: int, s: int, e: int, context: int, quantum: int = 1,
                 min_len: int = 1) -> tuple[int, int]:
    """Source ``[a, b)`` around core ``[s, e)``: ``context`` each side, grid-aligned.

    ``a`` is a multiple of ``quantum`` and ``b - a`` is congruent to ``n`` modulo it
    (``b`` is either ``n`` or congruent to ``n``), the two conditions for the tile's
    patch grid to be the image's.
    """
    a = (max(0, s - context) // quantum) * quantum
    b = e + context
    b = n if b >= n else b + (n - b) % quantum
    while b - a < min(min_len, n):  # too small for the model's search window
        if b < n:
            b = min(n, b + quantum)
        else:
            a = max(0, a - quantum)
    return a, b


def make_tile(h: int, w: int, core: tuple[int, int, int, int], context: int,
              quantum: int = 1, min_len: int = 1) -> Tile:
    cy0, cy1, cx0, cx1 = core
    y0, y1 = source_range(h, cy0, cy1, context, quantum, min_len)
    x0, x1 = source_range(w, cx0, cx1, context, quantum, min_len)
    return Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1)


def check_tile(tile: int) -> None:
    """A tile size in pixels: 0 (whole image) or at least ``MIN_CORE`` (smaller tiles would
    each re-read the model's whole context for a few pixels of output)."""
    from n3cli.errors import UsageError

    if tile < 0:
        raise UsageError(f"tile {tile} must not be negative", "use a size in pixels, 0 (whole image) or auto")
    if 0 < tile < MIN_CORE:
        raise UsageError(f"tile {tile} px is below the smallest tile, {MIN_CORE} px",
                         "use a larger --tile, 0 (whole image) or auto")


def merge_cores(n: int, cores: list[tuple[int, int]], context: int, quantum: int = 1,
                min_len: int = 1) -> list[tuple[int, int]]:
    """Join neighbouring cores whose joint source is no longer than the longer of theirs.

    Near an image edge (or when the context spans the whole axis) neighbouring cores
    share their source start or end, so their tiles would run the model on almost the
    same pixels again: one tile does it once, with no more memory than the larger of
    the two needed. The joint tile obeys the same alignment rule, so exact mode stays
    exact; in blend mode it only removes seams.
    """
    def length(s: int, e: int) -> int:
        a, b = source_range(n, s, e, context, quantum, min_len)
        return b - a

    merged = [cores[0]]
    for s, e in cores[1:]:
        ps, pe = merged[-1]
        if length(ps, e) <= max(length(ps, pe), length(s, e)):
            merged[-1] = (ps, e)
        else:
            merged.append((s, e))
    return merged


def plan_tiles(h: int, w: int, tile: int, context: int, quantum: int = 1,
               min_len: int = 1) -> list[Tile]:
    """All tiles of an ``h x w`` image, row-major; ``tile <= 0`` is one whole-image tile.

    Cores of ``tile`` pixels (:func:`axis_cores`) are joined where that costs no memory
    (:func:`merge_cores`).
    """
    rows = merge_cores(h, axis_cores(h, tile, quantum), context, quantum, min_len)
    cols = merge_cores(w, axis_cores(w, tile, quantum), context, quantum, min_len)
    return [make_tile(h, w, (cy0, cy1, cx0, cx1), context, quantum, min_len)
            for cy0, cy1 in rows for cx0, cx1 in cols]


def split_core(core: tuple[int, int, int, int], quantum: int = 1) -> list[tuple[int, int, int, int]] | None:
    """Halve a core along both axes at multiples of ``quantum``; None when too small."""
    cy0, cy1, cx0, cx1 = core

    def halves(a: int, b: int) -> list[tuple[int, int]]:
        mid = a + ((b - a) // 2 // quantum) * quantum
        return [(a, b)] if mid <= a or b - a < 2 * MIN_CORE else [(a, mid), (mid, b)]

    ys, xs = halves(cy0, cy1), halves(cx0, cx1)
    if len(ys) == 1 and len(xs) == 1:
        return None
    return [(a, b, c, d) for a, b in ys for c, d in xs]


def _ramp(n: int, a: int, b: int, s: int, e: int) -> torch.Tensor:
    """Raised-cosine weights over source ``[a, b)`` of core ``[s, e)``, 1 on the core."""
    i = torch.arange(a, b, dtype=torch.float64) + 0.5
    wgt = torch.ones(b - a, dtype=torch.float64)
    if a > 0:  # rise over [a, 2s - a): symmetric about the core edge
        span = max(2 * (s - a), 1)
        t = ((i - a) / span).clamp(0, 1)
        wgt = wgt * torch.where(i < a + span, torch.sin(t * math.pi / 2) ** 2, torch.ones_like(t))
    if b < n:
        span = max(2 * (b - e), 1)
        t = ((b - i) / span).clamp(0, 1)
        wgt = wgt * torch.where(i > b - span, torch.sin(t * math.pi / 2) ** 2, torch.ones_like(t))
    return wgt.float()


def blend_weights(h: int, w: int, t: Tile) -> torch.Tensor:
    """(1, 1, y1-y0, x1-x0) weights of a blend tile."""
    wy = _ramp(h, t.y0, t.y1, t.cy0, t.cy1)
    wx = _ramp(w, t.x0, t.x1, t.cx0, t.cx1)
    return (wy[:, None] * wx[None, :])[None, None]


def run_tiled(fn: Forward, x: torch.Tensor, tile: int, context: int, mode: str = "exact",
              quantum: int = 1, min_len: int = 1, progress: Progress | None = None,
              scale: int = 1) -> torch.Tensor:
    """Run ``fn`` on tiles of the CPU tensor ``x`` (1, C, H, W); return the CPU output.

    ``fn`` gets a (1, C, h, w) CPU tile (it moves it to the device) and returns a float
    (1, C_out, scale*h, scale*w) CPU tensor. Tiles are planned in input coordinates
    (``tile``, ``context``, ``quantum`` are input pixels) and placed in output coordinates;
    blending weights live in output space. ``mode`` is "exact" (copy cores) or "blend"
    (weighted average). A device OOM error splits the failing core in four and retries it.
    """
    if mode not in ("exact", "blend"):
        raise ValueError(f"mode must be exact or blend, got {mode!r}")
    _, _, h, w = x.shape
    queue = deque((t.cy0, t.cy1, t.cx0, t.cx1)
                  for t in plan_tiles(h, w, tile, context, quantum, min_len))
    out: torch.Tensor | None = None
    H, W = h * scale, w * scale
    wsum = torch.zeros(1, 1, H, W) if mode == "blend" else None
    done = 0
    if progress:
        progress(0, len(queue))
    while queue:
        core = queue.popleft()
        t = make_tile(h, w, core, context, quantum, min_len)
        try:
            y = fn(x[..., t.y0:t.y1, t.x0:t.x1])
        except torch.OutOfMemoryError:
            _free_device_cache()
            parts = split_core(core, quantum)
            if parts is None:
                raise N3Error("out of device memory even for the smallest tile",
                              "use --device cpu or a smaller --max-memory") from None
            queue.extendleft(reversed(parts))
            continue
        if out is None:
            out = torch.zeros(1, y.shape[1], H, W, dtype=torch.float32)
        o = t.scaled(scale)
        if mode == "exact":
            out[..., o.cy0:o.cy1, o.cx0:o.cx1] = y[..., o.cy0 - o.y0:o.cy1 - o.y0,
                                                   o.cx0 - o.x0:o.cx1 - o.x0]
        else:
            wgt = blend_weights(H, W, o)
            out[..., o.y0:o.y1, o.x0:o.x1] += y * wgt
            wsum[..., o.y0:o.y1, o.x0:o.x1] += wgt
        del y
        done += 1
        if progress:
            progress(done, done + len(queue))
    assert out is not None
    return out / wsum if wsum is not None else out


def _free_device_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
        mps.empty_cache()


def choose_tile(h: int, w: int, bytes_per_pixel: int, budget: int, context: int,
                quantum: int = 1, overhead: int = 0) -> int:
    """Largest core (multiple of ``quantum``) whose source fits ``budget``; 0 = whole image.

    Returns -1 when not even a ``MIN_CORE`` core fits.
    """
    avail = budget - overhead
    if h * w * bytes_per_pixel <= avail:
        return 0
    t = max(h, w)
    t -= t % quantum
    while t >= MIN_CORE:
        if min(h, t + 2 * context) * min(w, t + 2 * context) * bytes_per_pixel <= avail:
            return t
        t -= quantum * max(1, t // (8 * quantum))  # coarse steps first, fine near the end
    return -1
