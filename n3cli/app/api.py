"""The Python API: one function per job, on arrays (files: :mod:`n3cli.app.batch`).

    import n3cli
    clean = n3cli.denoise(noisy, sigma=25)          # H x W [x 3] float in [0, 1]
    big = n3cli.upscale(small, scale=3)

Both choose and load the model as the CLI does (``model="auto"``), run it through the
tiled engine and return float32 arrays (unclipped, as the models produce them).
"""

from __future__ import annotations

import numpy as np

from n3cli.errors import UsageError


def _engine_kwargs(device: str, tile: int | str, precision: str, ensemble: int, threads: int | None,
                   max_memory: str | int | None):
    from n3cli.engine import resolve_device

    return resolve_device(device), dict(tile=tile, precision=precision, ensemble=ensemble, threads=threads,
                                        max_memory=max_memory)


def _as_image(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3):
        raise UsageError(f"expected an H x W or H x W x 3 image, got shape {np.shape(image)}")
    return a


def denoise(image: np.ndarray, sigma: float | None = None, model: str = "auto", device: str = "auto",
            tile: int | str = "auto", precision: str = "fp32", ensemble: int = 1,
            threads: int | None = None, max_memory: str | int | None = None,
            gray_on_color: str = "rgb") -> np.ndarray:
    """Remove Gaussian noise from ``image`` (H x W or H x W x 3, float in [0, 1]).

    ``sigma``: the noise std in 8-bit units; None estimates it. ``model``: a name from
    ``n3 weights list`` or "auto" (by sigma and colour). Returns the same shape as given.
    """
    from n3cli.data.estimate import estimate_sigma
    from n3cli.engine import restore_image, sigma_conditions
    from n3cli.weights import choose_model, load_model

    a = _as_image(image)
    dev, kw = _engine_kwargs(device, tile, precision, ensemble, threads, max_memory)
    level = estimate_sigma(a) if sigma is None else float(sigma)
    name = choose_model(level, a.shape[2] == 3) if model == "auto" else model
    net, spec = load_model(name, dev)
    out = restore_image(net, spec.descriptor, a, sigma_conditions(level), dev, gray_on_color=gray_on_color, **kw)
    return out[..., 0] if np.ndim(image) == 2 else out


def upscale(image: np.ndarray, scale: int, model: str = "auto", device: str = "auto",
            tile: int | str = "auto", precision: str = "fp32", ensemble: int = 1,
            threads: int | None = None, max_memory: str | int | None = None) -> np.ndarray:
    """Enlarge ``image`` (H x W or H x W x 3, float in [0, 1]) by ``scale`` (2, 3 or 4)
    with an SR model ("auto": the bundled n3net-sr). Returns scale*H x scale*W [x 3]."""
    from n3cli.app.upscale import DEFAULT_SR_MODEL
    from n3cli.engine import restore_image
    from n3cli.weights import load_model

    a = _as_image(image)
    dev, kw = _engine_kwargs(device, tile, precision, ensemble, threads, max_memory)
    net, spec = load_model(DEFAULT_SR_MODEL if model == "auto" else model, dev, scale=int(scale))
    if spec.descriptor.task != "sr":
        raise UsageError(f"'{model}' is a {spec.descriptor.task} model, it does not upscale")
    out = restore_image(net, spec.descriptor, a, {}, dev, **kw)
    return out[..., 0] if np.ndim(image) == 2 else out
