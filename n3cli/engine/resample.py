"""MATLAB-compatible bicubic resizing of numpy images (``bicubic-pytorch``, which matches
MATLAB ``imresize`` within one 8-bit level): chroma and alpha of upscaled images, the SR
protocol's low-resolution images and its bicubic baseline."""

from __future__ import annotations

import numpy as np


def bicubic_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """H x W [x C] float image -> ``height x width`` [x C] float32 (antialiased when shrinking)."""
    import torch
    from bicubic_pytorch import imresize

    a = np.asarray(image, dtype=np.float32)
    planes = a[..., None] if a.ndim == 2 else a
    t = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None]
    out = imresize(t, sizes=(height, width))[0].numpy().transpose(1, 2, 0)
    return out[..., 0] if a.ndim == 2 else np.ascontiguousarray(out)
