"""The Python API: one function per job, on arrays (files: :mod:`n3cli.app.batch`).

    import n3cli
    clean = n3cli.denoise(noisy, sigma=25)          # H x W [x 3] float in [0, 1]
    big = n3cli.upscale(small, scale=3)

Both choose and load the model as the CLI does (``model="auto"``) and run it through the
tiled engine. Float arrays in [0, 1] give float32 arrays back (unclipped, as the models
produce them); uint8 / uint16 arrays (what imageio, Pillow and tifffile return) are read as
8- / 16-bit images and come back in their own dtype, clipped and rounded.
"""

from __future__ import annotations

import numpy as np

from n3cli.errors import UsageError


def _engine_kwargs(device: str, tile: int | str, precision: str, ensemble: int, threads: int | None,
                   max_memory: str | int | None):
    """The engine's options, checked here so that a bad value is one :class:`UsageError`."""
    from n3cli.engine import resolve_device
    from n3cli.engine.ensemble import ENSEMBLE_SIZES
    from n3cli.engine.memory import parse_size
    from n3cli.engine.tiling import check_tile

    if tile != "auto":
        if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)):
            raise UsageError(f"tile {tile!r} must be 'auto', 0 (no tiling) or a size in pixels")
        tile = int(tile)
        check_tile(tile)
    if isinstance(ensemble, bool) or ensemble not in ENSEMBLE_SIZES:
        raise UsageError(f"ensemble {ensemble!r} must be one of {', '.join(map(str, ENSEMBLE_SIZES))}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise UsageError(f"threads {threads!r} must be a positive integer or None")
    threads = None if threads is None else int(threads)
    return resolve_device(device), dict(tile=tile, precision=precision, ensemble=int(ensemble), threads=threads,
                                        max_memory=parse_size(max_memory, "max_memory"))


def _number(value: object, what: str) -> float:
    """A real number given as such (a bool or a string is a mistake, not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UsageError(f"{what} must be a number, got {value!r}")
    return float(value)


# Unclipped Gaussian noise of sigma 75 stays within about [-1.2, 2.2]; values far beyond
# [0, 1] mean 8-bit numbers in a float array, which the models would read as almost no noise.
_FLOAT_LIMIT = 4.0


def _as_image(image: np.ndarray) -> tuple[np.ndarray, np.dtype | None]:
    """(H, W, C) float32 in [0, 1] and the integer dtype to return, or None for float."""
    raw = np.asarray(image)
    if raw.ndim not in (2, 3) or (raw.ndim == 3 and raw.shape[2] not in (1, 3)):
        raise UsageError(f"expected an H x W or H x W x 3 image, got shape {raw.shape}",
                         "channels go last; drop an alpha channel first")
    if raw.size == 0:
        raise UsageError(f"the image is empty (shape {raw.shape})")
    if not raw.dtype.isnative:  # big-endian data (e.g. from a FITS or a raw dump): same numbers
        raw = raw.astype(raw.dtype.newbyteorder("="))
    back: np.dtype | None = None
    if raw.dtype in (np.uint8, np.uint16):
        back = raw.dtype
        a = raw.astype(np.float32) / np.iinfo(raw.dtype).max
    elif raw.dtype.kind == "f":
        a = raw.astype(np.float32)
        if not np.isfinite(a).all():
            raise UsageError("the image has NaN or infinite values", "replace them first")
        peak = float(np.abs(a).max())
        if peak > _FLOAT_LIMIT:
            raise UsageError(f"float values up to {peak:g}: a float image is expected in [0, 1]",
                             "pass 8-bit data as uint8 (or divide it by 255)")
    else:
        raise UsageError(f"unsupported array dtype {raw.dtype}",
                         "use float in [0, 1], uint8 or uint16")
    return (a[..., None] if a.ndim == 2 else a), back


def _as_given(out: np.ndarray, ndim: int, back: np.dtype | None) -> np.ndarray:
    """The result in the caller's layout (H x W stays H x W) and integer dtype."""
    out = out[..., 0] if ndim == 2 else out
    if back is None:
        return out
    top = np.iinfo(back).max
    return np.clip(np.rint(out * top), 0, top).astype(back)


def denoise(image: np.ndarray, sigma: float | None = None, model: str = "auto", device: str = "auto",
            tile: int | str = "auto", precision: str = "fp32", ensemble: int = 1,
            threads: int | None = None, max_memory: str | int | None = None,
            gray_on_color: str = "rgb") -> np.ndarray:
    """Remove Gaussian noise from ``image`` (H x W or H x W x 3: float in [0, 1], uint8
    or uint16; see the module docstring for what comes back).

    ``sigma``: the noise std in 8-bit units (for 16-bit data too); None estimates it.
    ``model``: a name from ``n3 weights list`` or "auto" (by sigma and colour). Returns the
    same shape as given.
    """
    from n3cli.app.batch import check_sigma
    from n3cli.data.estimate import TooSmallError, check_sigma_value, estimate_sigma
    from n3cli.engine import restore_image, sigma_conditions
    from n3cli.engine.precision import process_settings_kept
    from n3cli.engine.runner import GRAY_ON_COLOR_STRATEGIES
    from n3cli.weights import choose_model, load_model

    a, back = _as_image(image)
    dev, kw = _engine_kwargs(device, tile, precision, ensemble, threads, max_memory)
    if gray_on_color not in GRAY_ON_COLOR_STRATEGIES:
        raise UsageError(f"gray_on_color {gray_on_color!r} must be one of {', '.join(GRAY_ON_COLOR_STRATEGIES)}")
    if sigma is not None:
        level = check_sigma_value(_number(sigma, "sigma"))
    else:
        try:
            level = estimate_sigma(a)
        except TooSmallError as err:
            raise UsageError(f"cannot estimate the noise of a {a.shape[1]}x{a.shape[0]} image ({err})",
                             "give sigma") from None
    name = choose_model(level, a.shape[2] == 3) if model == "auto" else model
    net, spec = load_model(name, dev)
    desc = spec.descriptor
    if desc.task != "denoise":
        raise UsageError(f"'{name}' is {'an' if desc.task == 'sr' else 'a'} {desc.task} model, it cannot denoise an image",
                         "use n3cli.upscale, or pick a denoise model" if desc.task == "sr"
                         else "pick a Gaussian denoiser (see `n3 weights list`)")
    if sigma is not None:
        check_sigma(level, desc, name)
    with process_settings_kept():
        out = restore_image(net, spec.descriptor, a, sigma_conditions(level), dev, gray_on_color=gray_on_color, **kw)
    return _as_given(out, np.ndim(image), back)


def upscale(image: np.ndarray, scale: int, model: str = "auto", device: str = "auto",
            tile: int | str = "auto", precision: str = "fp32", ensemble: int = 1,
            threads: int | None = None, max_memory: str | int | None = None) -> np.ndarray:
    """Enlarge ``image`` (H x W or H x W x 3: float in [0, 1], uint8 or uint16) by
    ``scale`` (2, 3 or 4) with an SR model ("auto": the bundled n3net-sr). Returns
    scale*H x scale*W [x 3], in the dtype rules of the module docstring."""
    from n3cli.app.upscale import DEFAULT_SR_MODEL
    from n3cli.engine import restore_image
    from n3cli.engine.precision import process_settings_kept
    from n3cli.weights import load_model

    a, back = _as_image(image)
    factor = _number(scale, "scale")
    if factor not in (2, 3, 4):
        raise UsageError(f"scale {scale!r} is not 2, 3 or 4")
    dev, kw = _engine_kwargs(device, tile, precision, ensemble, threads, max_memory)
    net, spec = load_model(DEFAULT_SR_MODEL if model == "auto" else model, dev, scale=int(factor))
    if spec.descriptor.task != "sr":
        raise UsageError(f"'{model}' is a {spec.descriptor.task} model, it does not upscale")
    with process_settings_kept():
        out = restore_image(net, spec.descriptor, a, {}, dev, **kw)
    return _as_given(out, np.ndim(image), back)
