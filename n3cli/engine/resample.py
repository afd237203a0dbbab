"""MATLAB-compatible bicubic resizing of numpy images (``bicubic-pytorch`` matches MATLAB
``imresize`` within one 8-bit level): chroma and alpha of upscaled images, the SR
protocol's low-resolution images and its bicubic baseline."""

from __future__ import annotations

import numpy as np


def bicubic_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W [x C] float image -> ``height x width`` [x C] float32 (antialiased when
    shrinking). Integer enlargements use :func:`n3cli.ops.bicubic.bicubic_upsample` (the
    same values, translation-invariant), everything else ``bicubic-pytorch``."""
    import torch
    from bicubic_pytorch import imresize

    from n3cli.ops.bicubic import bicubic_upsample

    a = np.asarray(image, dtype=np.float32)
    planes = a[..., None] if a.ndim == 2 else a
    t = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]
    h, w = planes.shape[:2]
    s = height // h
    if s >= 1 and height == s * h and width == s * w:
        out = bicubic_upsample(t, s)
    else:
        out = imresize(t, sizes=(height, width))
    out = out[0].numpy().transpose(1, 2, 0)
    return out[..., 0] if a.ndim == 2 else np.ascontiguousarray(out)
