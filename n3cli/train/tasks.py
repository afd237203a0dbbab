"""Training tasks: how a batch of clean crops becomes (network input, target).

The loop knows only this interface, so new tasks (super-resolution, raw) plug in without
touching it: a task makes batches, gives the validation cases, and describes the trained
model for the engine (:class:`ModelDescriptor`).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn as nn

from n3cli.data.degrade import add_gaussian_noise, as_real_file, noise_level_map, sample_sigmas
from n3cli.data.pg_noise import LOG10_B_OFFSET, synthesize_pg_batch
from n3cli.models.arch import get_arch
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.registry import descriptor_for
from n3cli.train.config import TaskConfig


class Task(Protocol):
    """What the training loop needs from a task.

    A "level" is the degradation a batch or validation case has: a sigma for the
    denoising tasks, a scale for super-resolution.
    """

    def make_batch(self, clean: torch.Tensor, gen: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor, float | None]:
        """(B, C, H, W) float clean crops -> (network input, target, level)."""

    def make_case(self, clean: torch.Tensor, level: float, gen: torch.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """A validation (input, target) at a given degradation level."""

    def run(self, net: nn.Module, inp: torch.Tensor, level: float | None) -> torch.Tensor:
        """The network's output for ``inp`` (a level-dependent call for SR)."""

    def descriptor(self, config: Any) -> ModelDescriptor:
        """The contract of the trained model."""


def _focus(cfg: TaskConfig) -> tuple[tuple[float, float] | None, float]:
    """The oversampled part of the noise range and its share (blind-gauss, raw-pg)."""
    focus = (float(cfg.focus_range[0]), float(cfg.focus_range[1])) if cfg.focus_range else None
    return focus, float(cfg.focus_prob)


class _Denoising:
    """Denoisers take the input alone."""

    def run(self, net, inp, level):
        return net(inp)


class GaussTask(_Denoising):
    """Additive white Gaussian noise of one fixed sigma (the paper's models)."""

    def __init__(self, cfg: TaskConfig):
        self.sigma = float(cfg.sigma)
        self.real_prob = float(cfg.real_prob)

    def make_batch(self, clean, gen):
        sig = torch.full((clean.shape[0],), self.sigma, device=clean.device)
        noisy = as_real_file(add_gaussian_noise(clean, sig, gen), self.real_prob, gen)
        return noisy, clean, self.sigma

    def make_case(self, clean, sigma, gen):
        sig = torch.full((clean.shape[0],), float(sigma), device=clean.device)
        return add_gaussian_noise(clean, sig, gen), clean

    def descriptor(self, config):
        return descriptor_for(config, task="denoise", sigma=self.sigma)


class BlindGaussTask(_Denoising):
    """Gaussian noise with a per-sample sigma; the sigma/255 map is an extra input channel.

    The map is appended after the image channels, exactly as the engine feeds blind
    models (:func:`n3cli.engine.runner.model_input`).
    """

    def __init__(self, cfg: TaskConfig):
        self.low, self.high = (float(v) for v in cfg.sigma_range)
        self.focus, self.focus_prob = _focus(cfg)
        self.real_prob = float(cfg.real_prob)

    def make_batch(self, clean, gen):
        sig = sample_sigmas(clean.shape[0], self.low, self.high, gen, clean.device,
                            self.focus, self.focus_prob)
        noisy = as_real_file(add_gaussian_noise(clean, sig, gen), self.real_prob, gen)
        return torch.cat([noisy, noise_level_map(noisy, sig)], dim=1), clean, None

    def make_case(self, clean, sigma, gen):
        sig = torch.full((clean.shape[0],), float(sigma), device=clean.device)
        noisy = add_gaussian_noise(clean, sig, gen)
        return torch.cat([noisy, noise_level_map(noisy, sig)], dim=1), clean

    def descriptor(self, config):
        return descriptor_for(config, task="denoise", sigma_range=(self.low, self.high))


def downscale(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """The low-resolution image of the SR protocol: MATLAB ``imresize(hr, 1/scale)``
    (bicubic, antialiased, ``bicubic-pytorch``), clipped and rounded to 8 bits like a file.
    ``hr``'s height and width must be multiples of ``scale``."""
    from bicubic_pytorch import imresize

    h, w = hr.shape[-2:]
    lr = imresize(hr, sizes=(h // scale, w // scale))
    return torch.round(lr.clamp(0.0, 1.0) * 255.0) / 255.0


def mod_crop(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop (..., H, W) to multiples of ``scale`` (bottom and right), as the protocol does."""
    h, w = img.shape[-2:]
    return img[..., :h - h % scale, :w - w % scale]


class SRTask:
    """Super-resolution: HR luminance crops -> (bicubic LR, HR); one scale per batch, drawn
    uniformly from ``task.scales`` (a scale-mixed model sees every scale equally)."""

    def __init__(self, cfg: TaskConfig):
        self.scales = tuple(int(s) for s in cfg.scales)

    def make_batch(self, clean, gen):
        scale = self.scales[int(torch.randint(len(self.scales), (1,), generator=gen,
                                              device=gen.device).item())]
        hr = mod_crop(clean, scale)
        return downscale(hr, scale), hr, scale

    def make_case(self, clean, scale, gen):
        hr = mod_crop(clean, int(scale))
        return downscale(hr, int(scale)), hr

    def run(self, net, inp, level):
        return net(inp, int(level))

    def descriptor(self, config):
        return get_arch("n3net-sr").describe(config)


class RawPGTask(_Denoising):
    """Poisson-Gaussian raw noise, the paper's synthesis (spec section 5): each gray crop
    tone-mapped ``x^g * s`` (a share ``task.tone_prob`` of them), (a, b) drawn per sample,
    the noisy plane clipped to [0, 1]; the input is [noisy, a map, b map] as the engine
    feeds an ``n3net-raw`` model. ``task.focus_range`` (in ``log10 a``) with
    ``task.focus_prob`` oversamples part of the noise range: weak noise has orders of
    magnitude less squared error, so it weighs little in the loss (docs/RESULTS.md has
    what a weak-noise focus did to the bundled recipe).

    A validation level is ``log10 a``, with ``b = a / 10^2.3`` (the middle of the b range)
    and no tone mapping: the same cases at every evaluation."""

    def __init__(self, cfg: TaskConfig):
        self.tone_prob = float(cfg.tone_prob)
        self.focus, self.focus_prob = _focus(cfg)

    @staticmethod
    def _input(noisy: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        view = (-1, 1, 1, 1)
        return torch.cat([noisy, a.view(view).expand_as(noisy), b.view(view).expand_as(noisy)], dim=1)

    def make_batch(self, clean, gen):
        s = synthesize_pg_batch(clean, gen, tone_prob=self.tone_prob, focus=self.focus,
                                focus_prob=self.focus_prob)
        return self._input(s.noisy, s.a, s.b), s.clean, None

    def make_case(self, clean, level, gen):
        a = torch.full((clean.shape[0],), 10.0 ** float(level), device=clean.device, dtype=clean.dtype)
        b = a * 10.0 ** LOG10_B_OFFSET
        var = (a.view(-1, 1, 1, 1) * clean + b.view(-1, 1, 1, 1)).clamp_min(0.0)
        noise = torch.randn(clean.shape, generator=gen, device=clean.device, dtype=clean.dtype)
        noisy = (clean + noise * var.sqrt()).clamp(0.0, 1.0)
        return self._input(noisy, a, b), clean

    def descriptor(self, config):
        return get_arch("n3net-raw").describe(config, task="raw-denoise")


def make_task(cfg: TaskConfig) -> Task:
    if cfg.kind == "gauss":
        return GaussTask(cfg)
    if cfg.kind == "blind-gauss":
        return BlindGaussTask(cfg)
    if cfg.kind == "sr":
        return SRTask(cfg)
    if cfg.kind == "raw-pg":
        return RawPGTask(cfg)
    raise ValueError(f"unknown task {cfg.kind}")
