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

from n3cli.models.descriptor import ModelDescriptor

# Orthonormal opponent-colour transform: rows are unit vectors, so white noise of std
# sigma in RGB stays white with the same sigma in each opponent channel.
_OPP = np.array([[1 / np.sqrt(3)] * 3,
                 [1 / np.sqrt(2), 0.0, -1 / np.sqrt(2)],
                 [1 / np.sqrt(6), -2 / np.sqrt(6), 1 / np.sqrt(6)]], dtype=np.float32)
# Chroma channels live in about [-0.8, 0.8]; +0.5 moves them near the range gray models saw.
_CHROMA_SHIFT = 0.5

GRAY_ON_COLOR_STRATEGIES = ("rgb", "opponent")


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
               device: torch.device, forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Run ``model`` on an H x W x C array whose C equals the model's image channels.

    ``forward`` replaces the plain whole-image call (the tiled engine passes its own).
    Output is float32, unclipped.
    """
    x = torch.from_numpy(np.ascontiguousarray(planes.transpose(2, 0, 1)))[None].float()
    x, (h, w) = pad_to_min_size(x, desc.min_size, desc.size_multiple)
    inp = model_input(x, desc, sigma)
    fn = forward or (lambda t: model(t.to(device)).float().cpu())
    y = fn(inp)[..., :h, :w]
    return y[0].numpy().transpose(1, 2, 0)


def denoise_array(model: nn.Module, desc: ModelDescriptor, image: np.ndarray, sigma: float | None,
                  device: torch.device, gray_on_color: str = "opponent",
                  forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Denoise an H x W x C float image in [0, 1] (C = 1 or 3); returns the same shape.

    A gray model on a colour image runs per channel, either on R, G, B (``"rgb"``) or on
    an orthonormal opponent-colour transform (``"opponent"``); a colour model on a gray
    image sees the gray plane replicated and returns its mean.
    """
    if image.ndim == 2:
        image = image[..., None]
    c = image.shape[2]
    run = lambda p: run_planes(model, desc, p, sigma, device, forward)  # noqa: E731
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
