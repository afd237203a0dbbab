"""Training tasks: how a batch of clean crops becomes (network input, target).

The loop knows only this interface, so new tasks (super-resolution, raw) plug in without
touching it: a task makes batches, gives the validation cases, and describes the trained
model for the engine (:class:`ModelDescriptor`).
"""

from __future__ import annotations

from typing import Protocol

import torch

from n3cli.data.degrade import add_gaussian_noise, noise_level_map, sample_sigmas
from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.registry import descriptor_for
from n3cli.train.config import TaskConfig


class Task(Protocol):
    """What the training loop needs from a task."""

    def make_batch(self, clean: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) float clean crops -> (network input, target)."""

    def make_input(self, clean: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
        """A validation input at a given degradation level."""

    def descriptor(self, config: N3NetConfig) -> ModelDescriptor:
        """The contract of the trained model."""


class GaussTask:
    """Additive white Gaussian noise of one fixed sigma (the paper's models)."""

    def __init__(self, cfg: TaskConfig):
        self.sigma = float(cfg.sigma)

    def make_batch(self, clean, gen):
        sig = torch.full((clean.shape[0],), self.sigma, device=clean.device)
        return add_gaussian_noise(clean, sig, gen), clean

    def make_input(self, clean, sigma, gen):
        sig = torch.full((clean.shape[0],), float(sigma), device=clean.device)
        return add_gaussian_noise(clean, sig, gen)

    def descriptor(self, config):
        return descriptor_for(config, task="denoise", sigma=self.sigma)


class BlindGaussTask:
    """Gaussian noise with a per-sample sigma; the sigma/255 map is an extra input channel.

    The map is appended after the image channels, exactly as the engine feeds blind
    models (:func:`n3cli.engine.runner.model_input`).
    """

    def __init__(self, cfg: TaskConfig):
        self.low, self.high = (float(v) for v in cfg.sigma_range)
        self.focus = tuple(float(v) for v in cfg.focus_range) if cfg.focus_range else None
        self.focus_prob = float(cfg.focus_prob)

    def make_batch(self, clean, gen):
        sig = sample_sigmas(clean.shape[0], self.low, self.high, gen, clean.device,
                            self.focus, self.focus_prob)
        noisy = add_gaussian_noise(clean, sig, gen)
        return torch.cat([noisy, noise_level_map(noisy, sig)], dim=1), clean

    def make_input(self, clean, sigma, gen):
        sig = torch.full((clean.shape[0],), float(sigma), device=clean.device)
        noisy = add_gaussian_noise(clean, sig, gen)
        return torch.cat([noisy, noise_level_map(noisy, sig)], dim=1)

    def descriptor(self, config):
        return descriptor_for(config, task="denoise", noise_map=True,
                              sigma_range=(self.low, self.high))


def make_task(cfg: TaskConfig) -> Task:
    if cfg.kind == "gauss":
        return GaussTask(cfg)
    if cfg.kind == "blind-gauss":
        return BlindGaussTask(cfg)
    raise ValueError(f"unknown task {cfg.kind}")
