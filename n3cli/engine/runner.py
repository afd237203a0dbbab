"""Run a denoising model on one image, whatever its size and channel count.

Images are numpy arrays, float32, H x W x C in [0, 1] (C = 1 or 3). The model's
descriptor decides how they are fed: gray vs colour, noise-level map, padding of inputs
smaller than the N3 search window. Tiling (for memory) is in :mod:`n3cli.engine.tiling`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.engine.ensemble import check_ensemble, self_ensemble
from n3cli.engine.optimize import as_layout, inference_model
from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor

# Orthonormal opponent-colour transform: rows are unit vectors, so white noise of std
# sigma in RGB stays white with the same sigma in each opponent channel.
_OPP = np.array([[1 / np.sqrt(3)] * 3,
                 [1 / np.sqrt(2), 0.0, -1 / np.sqrt(2)],
                 [1 / np.sqrt(6), -2 / np.sqrt(6), 1 / np.sqrt(6)]], dtype=np.float32)
# Chroma channels live in about [-0.8, 0.8]; +0.5 moves them near the range gray models saw.
_CHROMA_SHIFT = 0.5

GRAY_ON_COLOR_STRATEGIES = ("rgb", "opponent")
# Measured on all 68 CBSD68 images at sigma 25 with the paper's sigma-25 model
# (docs/RESULTS.md): rgb 29.26 dB, opponent 23.14 dB (its luma channel reaches sqrt(3),
# far outside the [0, 1] the gray models were trained on). So per-channel RGB it is.
DEFAULT_GRAY_ON_COLOR = "rgb"


def model_input(x: torch.Tensor, desc: ModelDescriptor, sigma: float | None) -> torch.Tensor:
    """Append the noise-level map (sigma/255 everywhere) when the model expects one."""
    if not desc.noise_map:
        return x
    if sigma is None:
        raise ValueError("this model needs a noise level (sigma)")
    level = torch.full_like(x[:, :1], float(sigma) / 255.0)
    return torch.cat([x, level], dim=1)


def pad_to_min_size(x: torch.Tensor, min_size: int, multiple: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad (replicate where reflect is impossible) to at least ``min_size`` per side.

    Padding small inputs, rather than shrinking the search window only, keeps the N3
    blocks in the regime they were trained in (a full 15x15 window of candidates).
    """
    h, w = x.shape[-2:]
    th, tw = max(h, min_size), max(w, min_size)
    th += (-th) % multiple
    tw += (-tw) % multiple
    if (th, tw) == (h, w):
        return x, (h, w)
    while x.shape[-2] < th or x.shape[-1] < tw:
        ch, cw = x.shape[-2:]
        ph, pw = min(th - ch, ch - 1), min(tw - cw, cw - 1)
        if ph <= 0 and pw <= 0:
            x = F.pad(x, (0, tw - cw, 0, th - ch), mode="replicate")
            break
        x = F.pad(x, (0, max(pw, 0), 0, max(ph, 0)), mode="reflect")
    return x, (h, w)


@torch.inference_mode()
def run_planes(model: nn.Module, desc: ModelDescriptor, planes: np.ndarray, sigma: float | None,
               device: torch.device, forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
               ensemble: int = 1) -> np.ndarray:
    """Run ``model`` on an H x W x C array whose C equals the model's image channels.

    ``forward`` replaces the plain whole-image call (the tiled engine passes its own).
    ``ensemble``: average over that many flips/rotations (1, 2, 4 or 8; see
    :mod:`n3cli.engine.ensemble`). Output is float32, unclipped.
    """
    x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None].float()
    x, (h, w) = pad_to_min_size(x, desc.min_size, desc.size_multiple)
    inp = model_input(x, desc, sigma)
    fn = forward or (lambda t: model(as_layout(t.to(device), device)).float().cpu())
    y = self_ensemble(fn, inp, ensemble)[..., :h, :w]
    return y[0].numpy().transpose(1, 2, 0)


def denoise_array(model: nn.Module, desc: ModelDescriptor, image: np.ndarray, sigma: float | None,
                  device: torch.device, gray_on_color: str = DEFAULT_GRAY_ON_COLOR,
                  forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  ensemble: int = 1) -> np.ndarray:
    """Denoise an H x W x C float image in [0, 1] (C = 1 or 3); returns the same shape.

    A gray model on a colour image runs per channel, either on R, G, B (``"rgb"``) or on
    an orthonormal opponent-colour transform (``"opponent"``); a colour model on a gray
    image sees the gray plane replicated and returns its mean.
    """
    if image.ndim == 2:
        image = image[..., None]
    c = image.shape[2]
    run = lambda p: run_planes(model, desc, p, sigma, device, forward, ensemble)  # noqa: E731
    if c == desc.image_channels:
        return run(image)
    if desc.image_channels == 3 and c == 1:
        return run(np.repeat(image, 3, axis=2)).mean(axis=2, keepdims=True)
    if desc.image_channels == 1 and c == 3:
        if gray_on_color not in GRAY_ON_COLOR_STRATEGIES:
            raise ValueError(f"gray_on_color must be one of {GRAY_ON_COLOR_STRATEGIES}")
        if gray_on_color == "rgb":
            return np.concatenate([run(image[..., i:i + 1]) for i in range(3)], axis=2)
        opp = image @ _OPP.T
        opp[..., 1:] += _CHROMA_SHIFT
        out = np.concatenate([run(opp[..., i:i + 1]) for i in range(3)], axis=2)
        out[..., 1:] -= _CHROMA_SHIFT
        return out @ _OPP  # _OPP is orthonormal: its inverse is its transpose
    raise ValueError(f"cannot run a {desc.image_channels}-channel model on {c} channels")


# --- tiled, device- and precision-aware entry point -----------------------------------

# Paper config (706k parameters), whole-image fp32 inference as the engine runs it
# (BatchNorm folded, channels_last), one CPU thread: CPU seconds per megapixel measured
# by bench/n3_speed.py at 1024x1024 (14.3 s, docs/PERFORMANCE.md); more threads are
# assumed 90 % efficient. The GPU figure is a placeholder until scripts/gpu_check.sh has
# measured one.
CPU_SECONDS_PER_MPIXEL_1T = 14.0
GPU_SECONDS_PER_MPIXEL = 0.05


def tile_quantum(model: nn.Module, desc: ModelDescriptor) -> int:
    """Grid quantum for exact tiling: the N3 stride times the space-to-depth factor."""
    q = desc.extra.get("tile_quantum") if desc.extra else None
    if q:
        return int(q)
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "stride"):
        return int(cfg.stride) * int(getattr(cfg, "unshuffle", 1))
    return max(1, desc.size_multiple)


def resolve_tiling(h: int, w: int, model: nn.Module, desc: ModelDescriptor, device: torch.device,
                   tile: int | str = "auto", tile_overlap: int | None = None, mode: str = "exact",
                   max_memory: int | None = None, dtype: torch.dtype = torch.float32) -> tuple[int, int, str]:
    """Decide ``(tile, context, mode)`` for an ``h x w`` model input.

    ``tile`` 0 is the whole image; ``"auto"`` picks the largest core whose source fits the
    memory budget; ``mode`` "auto" is exact when an exact core of at least the halo fits,
    else blend. Exact mode with ``tile_overlap`` below the model's halo is a usage error.
    """
    from n3cli.engine import memory, tiling
    from n3cli.errors import UsageError

    if mode not in tiling.MODES:
        raise UsageError(f"unknown tiling mode '{mode}'", "use exact or blend")
    q = tile_quantum(model, desc)
    halo = desc.halo
    if mode == "exact" and tile_overlap is not None and tile_overlap < halo:
        raise UsageError(f"exact tiling needs an overlap of at least {halo} px for this model",
                         f"use --tile-overlap {halo} or --tile-mode blend")
    blend_ctx = tile_overlap if tile_overlap is not None else tiling.DEFAULT_BLEND_OVERLAP
    exact_ctx = tile_overlap if tile_overlap is not None else halo
    if isinstance(tile, str):
        if tile.strip().lower() != "auto":
            try:
                tile = int(tile)
            except ValueError:
                raise UsageError(f"bad tile size '{tile}'", "use a number of pixels, 0 or auto") from None
    if isinstance(tile, int):
        if tile < 0:
            raise UsageError(f"tile must be >= 0, got {tile}")
        if mode == "auto":
            mode = "exact"
        return tile, (exact_ctx if mode == "exact" else blend_ctx), mode
    budget = max_memory if max_memory is not None else memory.default_budget(device)
    bpp = memory.bytes_per_pixel(model, dtype)
    over = memory.FIXED_OVERHEAD
    t_exact = tiling.choose_tile(h, w, bpp, budget, exact_ctx, q, over)
    if t_exact == 0:
        return 0, exact_ctx, "exact" if mode == "auto" else mode
    if mode == "exact" or (mode == "auto" and t_exact >= halo):
        return max(t_exact, tiling.MIN_CORE), exact_ctx, "exact"
    t_blend = tiling.choose_tile(h, w, bpp, budget, blend_ctx, q, over)
    return max(t_blend, tiling.MIN_CORE), blend_ctx, "blend"


def make_forward(model: nn.Module, device: torch.device, dtype: torch.dtype = torch.float32
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """One tile: CPU float tensor in, to the device, dtype and layout, model, float CPU out."""
    def fn(t: torch.Tensor) -> torch.Tensor:
        return model(as_layout(t.to(device=device, dtype=dtype), device)).float().cpu()
    return fn


def denoise_image(model: nn.Module, desc: ModelDescriptor, image: np.ndarray, sigma: float | None,
                  device: torch.device, tile: int | str = "auto", tile_overlap: int | None = None,
                  mode: str = "exact", precision: str = "fp32", max_memory: int | str | None = None,
                  threads: int | None = None, progress: Callable[[int, int], None] | None = None,
                  gray_on_color: str = DEFAULT_GRAY_ON_COLOR, ensemble: int = 1) -> np.ndarray:
    """Denoise an H x W x C float image in [0, 1] with tiling, device and precision.

    ``tile``: ``"auto"`` (from the memory budget ``max_memory``, default a safe share of
    free RAM or GPU memory), a core size in pixels, or 0 for the whole image.
    ``mode``: "exact" (tiles carry the model's full dependency radius: same output as
    whole-image inference), "blend" (raised-cosine overlap of ``tile_overlap`` px) or
    "auto" (exact when affordable). ``progress(done, total)`` is called after every tile
    (``total`` counts all planes of a colour image run per channel). The model runs as
    :func:`n3cli.engine.optimize.inference_model` prepares it (an eval-mode copy with
    BatchNorm folded, on ``device`` in ``precision``, channels_last on the CPU); ``model``
    itself is not modified. ``ensemble`` > 1 averages that many flipped/rotated passes
    (n times the time). Returns float32 H x W x C.
    """
    from n3cli.engine import memory, precision as prec, tiling

    prec.set_threads(threads)
    dtype = prec.resolve_precision(precision, device, desc)
    prec.strict_fp32(device, dtype)
    model = inference_model(model, device, dtype)
    budget = memory.parse_size(max_memory)
    planes = 1 if image.ndim == 2 or image.shape[2] == desc.image_channels else \
        (3 if desc.image_channels == 1 else 1)
    planes *= check_ensemble(ensemble)  # progress counts every pass
    base = make_forward(model, device, dtype)
    state = {"plane": 0}

    def forward(inp: torch.Tensor) -> torch.Tensor:
        _, _, h, w = inp.shape
        t, ctx, m = resolve_tiling(h, w, model, desc, device, tile, tile_overlap, mode, budget, dtype)
        plane = state["plane"]
        state["plane"] += 1
        report = None
        if progress is not None:
            def report(done: int, total: int) -> None:
                progress(plane * total + done, planes * total)
        if t == 0:
            out = base(inp)
            if report:
                report(1, 1)
            return out
        return tiling.run_tiled(base, inp, t, ctx, m, tile_quantum(model, desc), desc.min_size,
                                report)

    return denoise_array(model, desc, image, sigma, device, gray_on_color, forward=forward,
                         ensemble=ensemble)


def estimate_seconds(h: int, w: int, desc: ModelDescriptor, device: torch.device,
                     tile: int = 0, mode: str = "exact", tile_overlap: int | None = None,
                     seconds_per_mpixel: float | None = None, quantum: int = 5,
                     config: N3NetConfig | None = None) -> float:
    """Rough wall time to denoise an ``h x w`` image (one plane), for a one-line notice.

    Throughput is the benchmark's measured seconds per megapixel of the paper config
    (scaled by the CPU thread count, and by ``config``'s multiply-adds per pixel relative
    to the paper's when given) or ``seconds_per_mpixel``; tiling adds the area of the tiles' context.
    """
    from n3cli.engine import tiling

    if seconds_per_mpixel is None:
        if device.type == "cpu":
            threads = max(1, torch.get_num_threads())
            seconds_per_mpixel = CPU_SECONDS_PER_MPIXEL_1T / (1 + 0.9 * (threads - 1))
        else:
            seconds_per_mpixel = GPU_SECONDS_PER_MPIXEL
        if config is not None:
            seconds_per_mpixel *= config.macs_per_pixel() / N3NetConfig().macs_per_pixel()
    h, w = max(h, desc.min_size), max(w, desc.min_size)
    ctx = tile_overlap if tile_overlap is not None else (
        desc.halo if mode == "exact" else tiling.DEFAULT_BLEND_OVERLAP)
    area = sum(t.area for t in tiling.plan_tiles(h, w, tile, ctx, quantum, desc.min_size))
    return seconds_per_mpixel * area / 1e6
