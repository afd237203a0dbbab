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
    from n3cli.engine import resolve_device

    return resolve_device(device), dict(tile=tile, precision=precision, ensemble=ensemble, threads=threads,
                                        max_memory=max_memory)


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
    back: np.dtype | None = None
    if raw.dtype in (np.uint8, np.uint16):
        back = raw.dtype
        a = raw.astype(np.float32) / np.iinfo(raw.dtype).max
    elif raw.dtype.kind == "f":
        a = raw.astype(np.float32)
        if not np.isfinite(a).all():
            raise UsageError("the image has NaN or infinite values", "replace them before denoising")
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
    from n3cli.data.estimate import estimate_sigma
    from n3cli.engine import restore_image, sigma_conditions
    from n3cli.weights import choose_model, load_model

    a, back = _as_image(image)
    dev, kw = _engine_kwargs(device, tile, precision, ensemble, threads, max_memory)
    level = estimate_sigma(a) if sigma is None else float(sigma)
    name = choose_model(level, a.shape[2] == 3) if model == "auto" else model
    net, spec = load_model(name, dev)
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
    from n3cli.weights import load_model

    a, back = _as_image(image)
    dev, kw = _engine_kwargs(device, tile, precision, ensemble, threads, max_memory)
    net, spec = load_model(DEFAULT_SR_MODEL if model == "auto" else model, dev, scale=int(scale))
    if spec.descriptor.task != "sr":
        raise UsageError(f"'{model}' is a {spec.descriptor.task} model, it does not upscale")
    out = restore_image(net, spec.descriptor, a, {}, dev, **kw)
    return _as_given(out, np.ndim(image), back)
