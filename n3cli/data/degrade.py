"""Batched training-sample synthesis: random crops, dihedral augmentation, noise.

Pure tensor operations on the device the data lives on (no networks, no host syncs):
one gather produces a whole batch of augmented crops, noise is drawn in float and left
unclipped (spec section 4) unless a share of samples is asked to look like real 8-bit
files (:func:`as_real_file`, through :func:`to_8bit`, the one clip-and-round of the project).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from n3cli.data.folder import ImageBank

AUGMENTATIONS = ("none", "vflip", "dihedral")


def crop_batch(bank: ImageBank, idx: torch.Tensor, crop: int, gen: torch.Generator,
               augment: str = "dihedral") -> torch.Tensor:
    """Random ``crop`` x ``crop`` crops of images ``idx``, augmented, as (B, C, crop, crop) uint8.

    ``augment``: "none"; "vflip" (upside-down with probability 1/2, the paper's);
    "dihedral" (all 8 flips/rotations by 90 degrees, equally likely). The flips and the
    transposition are folded into the gather indices, so augmentation costs nothing extra.
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}")
    dev = bank.pixels.device
    b = idx.shape[0]
    h, w, off = bank.heights[idx], bank.widths[idx], bank.offsets[idx]
    u = torch.rand(b, 5, generator=gen, device=dev)
    y0 = (u[:, 0] * (h - crop + 1).to(u.dtype)).long().clamp_(max=h - crop)
    x0 = (u[:, 1] * (w - crop + 1).to(u.dtype)).long().clamp_(max=w - crop)
    ar = torch.arange(crop, device=dev)
    rows = ar.view(1, crop, 1).expand(b, crop, crop)
    cols = ar.view(1, 1, crop).expand(b, crop, crop)
    if augment != "none":
        vflip = (u[:, 2] < 0.5).view(b, 1, 1)
        if augment == "dihedral":
            trans = (u[:, 3] < 0.5).view(b, 1, 1)
            hflip = (u[:, 4] < 0.5).view(b, 1, 1)
            rows, cols = torch.where(trans, cols, rows), torch.where(trans, rows, cols)
            cols = torch.where(hflip, crop - 1 - cols, cols)
        rows = torch.where(vflip, crop - 1 - rows, rows)
    flat = off.view(b, 1, 1) + (y0.view(b, 1, 1) + rows) * w.view(b, 1, 1) + x0.view(b, 1, 1) + cols
    return bank.pixels[flat].permute(0, 3, 1, 2)  # (B, crop, crop, C) -> (B, C, crop, crop)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1]."""
    return x.float().mul_(1.0 / 255.0)


def add_gaussian_noise(clean: torch.Tensor, sigma: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """clean + N(0, 1) * sigma / 255, per sample sigma (B,) in 8-bit units; not clipped."""
    noise = torch.randn(clean.shape, generator=gen, device=clean.device, dtype=clean.dtype)
    return clean + noise * (sigma.to(clean.dtype) / 255.0).view(-1, *([1] * (clean.dim() - 1)))


Pixels = TypeVar("Pixels", np.ndarray, torch.Tensor)


def to_8bit(x: Pixels) -> Pixels:
    """Clip to [0, 1] and round to 256 levels, as writing an 8-bit file does.

    numpy in, float32 numpy out (the evaluation protocols); a tensor stays a tensor of its
    dtype and device (training). Both round half to even.
    """
    if isinstance(x, torch.Tensor):
        return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def as_real_file(noisy: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """With probability ``prob`` per sample, clip the noisy image to [0, 1] and round it to
    8 bits, as every noisy PNG or JPEG a user has is (``n3 eval --protocol real``); the other
    samples stay unclipped float, the paper's protocol. ``prob`` 0 returns ``noisy`` itself."""
    if prob <= 0:
        return noisy
    pick = torch.rand(noisy.shape[0], generator=gen, device=noisy.device) < prob
    real = to_8bit(noisy)
    return torch.where(pick.view(-1, *([1] * (noisy.dim() - 1))), real, noisy)


def sample_sigmas(n: int, low: float, high: float, gen: torch.Generator, device: torch.device,
                  focus: tuple[float, float] | None = None, focus_prob: float = 0.0) -> torch.Tensor:
    """Per-sample sigmas ~ U(low, high), or with probability ``focus_prob`` ~ U(*focus)."""
    u = torch.rand(n, 2, generator=gen, device=device)
    s = low + (high - low) * u[:, 0]
    if focus is not None and focus_prob > 0:
        f = focus[0] + (focus[1] - focus[0]) * u[:, 0]
        s = torch.where(u[:, 1] < focus_prob, f, s)
    return s


def noise_level_map(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """One constant plane per sample holding sigma/255 (the blind models' extra input)."""
    return (sigma.to(x.dtype) / 255.0).view(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:])
