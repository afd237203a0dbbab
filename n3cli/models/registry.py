"""Registry of named architectures: the name is the contract (after timm).

A name maps to an :class:`N3NetConfig` and a :class:`ModelDescriptor`. Where the weights
come from (bundled file, download URL + sha256 + licence, user import) is data kept apart,
in :mod:`n3cli.weights`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch.nn as nn

from n3cli.models.arch import DEFAULT_ARCH, Architecture, get_arch, register_arch
from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.n3net import N3Net


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its architecture (``arch`` + ``config``) and its contract."""

    name: str
    config: Any  # the architecture's config type (N3NetConfig for "n3net")
    descriptor: ModelDescriptor
    summary: str = ""
    arch: str = DEFAULT_ARCH

    def build(self) -> nn.Module:
        return get_arch(self.arch).build(self.config)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.build().parameters())


def dependency_radius(cfg: N3NetConfig) -> int:
    """How many input pixels away one output pixel can depend on (exact-tiling halo).

    Each 3x3 conv adds 1. An N3 block reads its embedding/temperature CNNs
    (``embed_depth`` convs) over its candidates' patches; a query's window, shifted to
    stay inside the grid near a border, can reach ``window - 1`` strides past the query
    patch's start, plus the patch extent. The sum over layers bounds the composition
    (measured with gradients of the reference implementation: 138 px for the paper
    config, against 182 here; tests/engine/test_tiling.py checks exact tiling with it).
    """
    s = cfg.unshuffle
    n3 = (cfg.window - 1) * cfg.stride + cfg.patch - 1 + cfg.embed_depth
    r = (cfg.num_n3 + 1) * cfg.depth + cfg.num_n3 * n3
    return r * s + (s - 1)


def n3_window_pixels(cfg) -> int:
    """Pixels (of the grid the N3 blocks run on) one full search window spans."""
    return (cfg.window - 1) * cfg.stride + cfg.patch


def descriptor_for(cfg: N3NetConfig, **kw) -> ModelDescriptor:
    """A descriptor whose size fields are derived from the architecture, in input pixels
    (an unshuffled model's window spans ``unshuffle`` times more of the image)."""
    base = ModelDescriptor(image_channels=cfg.image_channels,
                           noise_map=cfg.in_channels > cfg.image_channels,
                           min_size=n3_window_pixels(cfg) * cfg.unshuffle,
                           size_multiple=cfg.unshuffle,
                           halo=dependency_radius(cfg))
    return replace(base, **kw)


register_arch(Architecture("n3net", N3NetConfig, N3Net, descriptor_for))


PAPER_GRAY = N3NetConfig()

_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec | None:
    return _REGISTRY.get(name)


def list_specs() -> list[ModelSpec]:
    return sorted(_REGISTRY.values(), key=lambda s: s.name)


for _sigma in (25, 50, 70):
    register(ModelSpec(
        name=f"n3net-paper-s{_sigma}",
        config=PAPER_GRAY,
        descriptor=descriptor_for(PAPER_GRAY, sigma=float(_sigma)),
        summary=f"paper's gray Gaussian denoiser, sigma {_sigma} (research-only weights)",
    ))
