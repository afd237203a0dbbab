"""Run any model on one image, whatever its size and channel count: :func:`restore_image`.

Images are numpy arrays, float32, H x W x C in [0, 1] (C = 1 or 3). The model's
descriptor decides how they are fed: its packing (gray, RGB, luminance), conditioning
maps, scale, padding of inputs smaller than the N3 search window, tiling context and
grid. Tiling (for memory) is in :mod:`n3cli.engine.tiling`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.engine.ensemble import check_ensemble, self_ensemble
from n3cli.errors import UsageError
from n3cli.engine.optimize import as_layout, inference_model
from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor

#: Conditioning maps by name: a scalar (constant map) or an H x W array, in model units;
#: for a model that runs plane by plane (Bayer packing), also one such value per plane (a
#: sequence, or an H x W x planes array).
Conditions = dict[str, "float | np.ndarray | list"]

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


def model_input(x: torch.Tensor, desc: ModelDescriptor, conditions: Conditions | None) -> torch.Tensor:
    """Append the conditioning maps the descriptor lists, in its order.

    ``conditions`` maps each name to a scalar (a constant map) or an H x W array (a
    per-pixel map, same size as ``x``), in the model's units (``sigma``: std / 255).
    """
    if not desc.conditioning:
        return x
    maps = []
    for name in desc.conditioning:
        value = (conditions or {}).get(name)
        if value is None:
            raise ValueError(f"this model needs a '{name}' map (e.g. a noise level)")
        if np.isscalar(value):
            maps.append(torch.full_like(x[:, :1], float(value)))
        else:
            m = torch.as_tensor(np.asarray(value, dtype=np.float32))
            if tuple(m.shape) != tuple(x.shape[-2:]):
                raise ValueError(f"'{name}' map is {tuple(m.shape)}, the image {tuple(x.shape[-2:])}")
            maps.append(m.to(x.dtype)[None, None].expand(x.shape[0], 1, -1, -1))
    return torch.cat([x, *maps], dim=1)


def plane_conditions(conditions: Conditions | None, i: int, planes: int) -> Conditions:
    """The conditions of plane ``i`` of ``planes``: per-plane values (a sequence of
    ``planes`` scalars or maps, or an H x W x planes array) are indexed, others shared."""
    out: Conditions = {}
    for name, v in (conditions or {}).items():
        if isinstance(v, (list, tuple)) or (isinstance(v, np.ndarray) and v.ndim in (1, 3)):
            n = len(v) if not isinstance(v, np.ndarray) or v.ndim == 1 else v.shape[2]
            if n != planes:
                raise ValueError(f"'{name}' has {n} per-plane values for {planes} planes")
            v = v[i] if not isinstance(v, np.ndarray) or v.ndim == 1 else v[..., i]
        out[name] = v
    return out


def plane_passes(desc: ModelDescriptor, channels: int) -> int:
    """How many times the model runs on an image of ``channels`` planes (one pass each)."""
    if desc.image_channels == 1 and desc.packing != "y" and channels > 1:
        return channels  # a colour image per channel, or the planes of a mosaic
    return 1


# Box size (plane pixels) of the signal estimate under a per-pixel sigma map.
_SIGMA_SMOOTHING = 5


def pg_conditions(conditioning: tuple[str, ...], planes: np.ndarray,
                  noise: "list[tuple[float, float]] | tuple[tuple[float, float], ...]") -> Conditions:
    """The maps a model's ``conditioning`` names, from a Poisson-Gaussian noise model
    (``variance = a*x + b``, one (a, b) per plane of ``planes``, H x W x P in [0, 1]):
    ``a`` / ``b`` per plane (a raw model), or ``sigma`` per pixel, ``sqrt(a*x + b)`` of the
    locally averaged signal (a blind Gaussian model). ``ValueError`` for other names."""
    out: Conditions = {}
    for name in conditioning:
        if name == "a":
            out["a"] = [float(a) for a, _ in noise]
        elif name == "b":
            out["b"] = [float(b) for _, b in noise]
        elif name == "sigma":
            from scipy.ndimage import uniform_filter

            sig = np.empty(planes.shape, np.float32)
            for i, (a, b) in enumerate(noise):
                signal = uniform_filter(planes[..., i], _SIGMA_SMOOTHING, mode="reflect")
                sig[..., i] = np.sqrt(np.maximum(a * np.clip(signal, 0.0, 1.0) + b, 0.0))
            out["sigma"] = sig
        else:
            raise ValueError(f"the model needs a '{name}' map, which a Poisson-Gaussian noise model does not give")
    return out


def sigma_conditions(sigma: float | None) -> Conditions:
    """The conditioning of a Gaussian denoiser: sigma in 8-bit units -> {"sigma": sigma/255}."""
    return {} if sigma is None else {"sigma": float(sigma) / 255.0}


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
def _run_planes(model: nn.Module, desc: ModelDescriptor, planes: np.ndarray, conditions: Conditions | None,
                forward: Callable[[torch.Tensor], torch.Tensor], ensemble: int = 1) -> np.ndarray:
    """``model`` on an H x W x C array whose C is the model's image channels; the output
    is ``scale`` times larger, float32, unclipped. Small inputs are padded (reflect) to the
    descriptor's minimum size and multiple, and the output cropped back. Per-pixel
    conditioning maps are padded with the image."""
    x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None].float()
    h, w = x.shape[-2:]
    inp = model_input(x, desc, conditions)
    inp, _ = pad_to_min_size(inp, desc.min_size, desc.size_multiple)
    y = self_ensemble(forward, inp, ensemble, desc.ensemble_ops)[..., :h * desc.scale, :w * desc.scale]
    return y[0].numpy().transpose(1, 2, 0)


# BT.601 luminance of a gray image seen as R = G = B (what a "y" model was trained on).
_Y_OFFSET, _Y_GAIN = 16.0 / 255.0, 219.0 / 255.0


def _run_packed(model: nn.Module, desc: ModelDescriptor, image: np.ndarray, conditions: Conditions | None,
                forward: Callable[[torch.Tensor], torch.Tensor], gray_on_color: str = DEFAULT_GRAY_ON_COLOR,
                ensemble: int = 1) -> np.ndarray:
    """Turn an H x W x C image (C = 1 or 3) into the planes the descriptor's packing asks
    for, run them, and turn the result back into C channels.

    "gray": a colour image runs per channel, on R, G, B (``"rgb"``) or on an orthonormal
    opponent-colour transform (``"opponent"``); "rgb": a gray image runs replicated and
    returns the mean; "y": the BT.601 luminance runs through the model and the chroma is
    resized by bicubic interpolation (a gray image is its own luminance).
    """
    if image.ndim == 2:
        image = image[..., None]
    c = image.shape[2]
    if c == 1:
        conditions = plane_conditions(conditions, 0, 1)  # per-plane values of a one-plane image
    run = lambda p: _run_planes(model, desc, p, conditions, forward, ensemble)  # noqa: E731
    def per_plane(planes: np.ndarray) -> np.ndarray:
        n = planes.shape[2]
        return np.concatenate([_run_planes(model, desc, planes[..., i:i + 1], plane_conditions(conditions, i, n),
                                           forward, ensemble) for i in range(n)], axis=2)

    if desc.image_channels == 1 and (desc.packing == "bayer" or c not in (1, 3)):
        # One plane at a time, each with its own conditions (CFA planes of a raw mosaic).
        return per_plane(image)
    if desc.packing == "y":
        return _run_luminance(run, desc.scale, image)
    if c == desc.image_channels:
        return run(image)
    if desc.image_channels == 3 and c == 1:
        return run(np.repeat(image, 3, axis=2)).mean(axis=2, keepdims=True)
    if desc.image_channels == 1 and c == 3:
        if gray_on_color not in GRAY_ON_COLOR_STRATEGIES:
            raise ValueError(f"gray_on_color must be one of {GRAY_ON_COLOR_STRATEGIES}")
        if gray_on_color == "rgb":
            return per_plane(image)
        opp = image @ _OPP.T
        opp[..., 1:] += _CHROMA_SHIFT
        out = np.concatenate([run(opp[..., i:i + 1]) for i in range(3)], axis=2)
        out[..., 1:] -= _CHROMA_SHIFT
        return out @ _OPP  # _OPP is orthonormal: its inverse is its transpose
    raise UsageError(f"this is a {desc.image_channels}-channel model: it cannot run on an image of {c} channels",
                     "choose a gray (1) or colour (3) model with --model")


def _run_luminance(run: Callable[[np.ndarray], np.ndarray], scale: int, image: np.ndarray) -> np.ndarray:
    from n3cli.data.colorspace import rgb_to_ycbcr, ycbcr_to_rgb
    from n3cli.engine.resample import bicubic_resize

    if image.shape[2] == 1:
        y = run((_Y_OFFSET + _Y_GAIN * image).astype(np.float32))
        return (y - _Y_OFFSET) / _Y_GAIN
    ycc = rgb_to_ycbcr(image)
    y = run(ycc[..., :1])
    h, w = y.shape[:2]
    chroma = ycc[..., 1:] if scale == 1 else bicubic_resize(ycc[..., 1:], h, w)
    return ycbcr_to_rgb(np.concatenate([y, chroma], axis=2))


# --- tiled, device- and precision-aware entry point -----------------------------------

# Paper config (706k parameters), whole-image fp32 inference as the engine runs it
# (BatchNorm folded, channels_last), one CPU thread: CPU seconds per megapixel measured
# by bench/n3_speed.py at 1024x1024 (14.3 s, docs/PERFORMANCE.md); more threads are
# assumed 90 % efficient. Other models scale it by their multiply-adds per pixel. The GPU
# figure is a placeholder until scripts/gpu_check.sh has measured one.
CPU_SECONDS_PER_MPIXEL_1T = 14.0
PAPER_MACS_PER_PIXEL = N3NetConfig().macs_per_pixel()
GPU_SECONDS_PER_MPIXEL = 0.05


def resolve_tiling(h: int, w: int, desc: ModelDescriptor, device: torch.device,
                   tile: int | str = "auto", tile_overlap: int | None = None, mode: str = "exact",
                   max_memory: int | None = None, dtype: torch.dtype = torch.float32) -> tuple[int, int, str]:
    """Decide ``(tile, context, mode)`` for an ``h x w`` model input (input pixels).

    ``tile`` 0 is the whole image; ``"auto"`` picks the largest core whose source fits the
    memory budget (the descriptor's bytes per input pixel); ``mode`` "auto" is exact when
    an exact core of at least the halo fits, else blend. Exact mode with ``tile_overlap``
    below the model's halo is a usage error.
    """
    from n3cli.engine import memory, tiling
    from n3cli.errors import UsageError

    if mode not in tiling.MODES:
        raise UsageError(f"unknown tiling mode '{mode}'", "use exact or blend")
    q = desc.tile_quantum
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
        tiling.check_tile(tile)
        if mode == "auto":
            mode = "exact"
        return tile, (exact_ctx if mode == "exact" else blend_ctx), mode
    budget = max_memory if max_memory is not None else memory.default_budget(device)
    bpp = memory.bytes_per_pixel(desc, dtype)
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


def restore_image(model: nn.Module, desc: ModelDescriptor, image: np.ndarray, conditions: Conditions | None,
                  device: torch.device, tile: int | str = "auto", tile_overlap: int | None = None,
                  mode: str = "exact", precision: str = "fp32", max_memory: int | str | None = None,
                  threads: int | None = None, progress: Callable[[int, int], None] | None = None,
                  gray_on_color: str = DEFAULT_GRAY_ON_COLOR, ensemble: int = 1,
                  prepared: bool = False) -> np.ndarray:
    """Run any model (denoiser, upscaler) on an H x W x C float image in [0, 1].

    The one engine entry point: everything it needs comes from ``desc`` (packing,
    conditioning, scale, sizes, halo, tile quantum, memory and precision support).
    ``conditions``: the conditioning maps by name (see :func:`model_input`;
    :func:`sigma_conditions` for a Gaussian denoiser). ``tile``: ``"auto"`` (from the
    memory budget ``max_memory``, default a safe share of free RAM or GPU memory), a core
    size in input pixels, or 0 for the whole image. ``mode``: "exact" (tiles carry the
    model's full dependency radius: same output as a whole-image run), "blend"
    (raised-cosine overlap of ``tile_overlap`` px, blended in output space) or "auto".
    ``progress(done, total)`` is called after every tile (``total`` counts every plane
    and ensemble pass). The model runs as :func:`n3cli.engine.optimize.inference_model`
    prepares it (an eval-mode copy, BatchNorm folded, on ``device`` in ``precision``,
    channels_last on the CPU) unless ``prepared`` says it already is; ``model`` itself is
    not modified. ``ensemble`` > 1 averages that many flips/rotations (among the
    descriptor's allowed ones). Returns float32, ``scale`` times the input's size.
    """
    from n3cli.engine import memory, precision as prec, tiling

    prec.set_threads(threads)
    dtype = prec.resolve_precision(precision, device, desc)
    prec.strict_fp32(device, dtype)
    if not prepared:
        model = inference_model(model, device, dtype)
    budget = memory.parse_size(max_memory)
    c = 1 if image.ndim == 2 else image.shape[2]
    planes = plane_passes(desc, c)
    planes *= check_ensemble(ensemble)  # progress counts every pass
    base = make_forward(model, device, dtype)
    state = {"plane": 0}

    def forward(inp: torch.Tensor) -> torch.Tensor:
        _, _, h, w = inp.shape
        t, ctx, m = resolve_tiling(h, w, desc, device, tile, tile_overlap, mode, budget, dtype)
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
        return tiling.run_tiled(base, inp, t, ctx, m, desc.tile_quantum, desc.min_size, report,
                                scale=desc.scale)

    return _run_packed(model, desc, image, conditions, forward, gray_on_color, ensemble)


def estimate_seconds(h: int, w: int, desc: ModelDescriptor, device: torch.device,
                     tile: int = 0, mode: str = "exact", tile_overlap: int | None = None,
                     seconds_per_mpixel: float | None = None) -> float:
    """Rough wall time of one pass over an ``h x w`` input (one plane): a prior that the
    application calibrates on the machine (``n3cli.app.batch``).

    Throughput is the benchmark's measured seconds per megapixel of the paper config,
    scaled by the CPU thread count and by the descriptor's multiply-adds per pixel, or
    ``seconds_per_mpixel``; tiling adds the area of the tiles' context.
    """
    from n3cli.engine import tiling

    if seconds_per_mpixel is None:
        if device.type == "cpu":
            threads = max(1, torch.get_num_threads())
            seconds_per_mpixel = CPU_SECONDS_PER_MPIXEL_1T / (1 + 0.9 * (threads - 1))
        else:
            seconds_per_mpixel = GPU_SECONDS_PER_MPIXEL
        if desc.macs_per_pixel:
            seconds_per_mpixel *= desc.macs_per_pixel / PAPER_MACS_PER_PIXEL
    h, w = max(h, desc.min_size), max(w, desc.min_size)
    ctx = tile_overlap if tile_overlap is not None else (
        desc.halo if mode == "exact" else tiling.DEFAULT_BLEND_OVERLAP)
    area = sum(t.area for t in tiling.plan_tiles(h, w, tile, ctx, desc.tile_quantum, desc.min_size))
    return seconds_per_mpixel * area / 1e6
