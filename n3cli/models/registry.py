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
from n3cli.models.descriptor import ModelDescriptor, task_fields
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


def n3net_bytes_per_pixel(cfg: N3NetConfig) -> int:
    """Estimated fp32 peak inference bytes per input pixel (the engine's whole-image path).

    float32 values alive at the N3 block's peak: its input and the concatenated output
    ((k+1) c), the k aggregated images twice (cells and cropped copy), the embedding
    network's widest layer twice, the cell copies of x and e; or a local CNN's two widest
    activations. That is 464 floats (1856 B) for the paper config, where
    bench/n3_speed.py measured a peak RSS growth of ~1290 B/px for the plain modules
    (~1050-1110 B/px as the engine runs them): 0.85 keeps 20-50 % of margin.
    """
    c, k = cfg.n3_channels, cfg.k
    n3 = (k + 1) * c * 2 + 3 * k * c + 2 * cfg.embed_features + 4 * c + 8
    conv = 3 * cfg.features + (k + 1) * c
    return int(max(n3, conv) * 4 * 0.85) // cfg.unshuffle**2 + 1


def descriptor_for(cfg: N3NetConfig, **kw) -> ModelDescriptor:
    """A descriptor whose geometry and cost are derived from the architecture, in input
    pixels (an unshuffled model's window spans ``unshuffle`` times more of the image);
    ``kw`` sets the task fields (task, sigma, sigma_range, ...)."""
    base = ModelDescriptor(image_channels=cfg.image_channels,
                           packing="gray" if cfg.image_channels == 1 else "rgb",
                           conditioning=("sigma",) if cfg.in_channels > cfg.image_channels else (),
                           min_size=n3_window_pixels(cfg) * cfg.unshuffle,
                           size_multiple=cfg.unshuffle,
                           halo=dependency_radius(cfg),
                           tile_quantum=cfg.stride * cfg.unshuffle,
                           macs_per_pixel=cfg.macs_per_pixel(),
                           bytes_per_pixel=n3net_bytes_per_pixel(cfg))
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


def spec_at_scale(spec: ModelSpec, scale: int) -> ModelSpec:
    """The spec of a multi-scale model (``descriptor.scales``) fixed to one ``scale``: its
    descriptor re-derived for that scale (sizes and cost depend on it). A built model
    of such a spec offers ``model.at_scale(scale)``, a module whose ``forward(x)`` upscales
    by ``scale``: that is what the engine runs."""
    if scale not in spec.descriptor.scales:
        raise ValueError(f"{spec.name} upscales by {', '.join(map(str, spec.descriptor.scales))}, not {scale}")
    task = {**task_fields(spec.descriptor), "scale": scale}
    return replace(spec, descriptor=get_arch(spec.arch).describe(spec.config, **task))


def _register_paper_sr() -> None:
    from n3cli.models.sr import SRConfig, describe_sr

    cfg = SRConfig()
    register(ModelSpec(name="n3net-sr-paper", config=cfg, descriptor=describe_sr(cfg), arch="n3net-sr",
                       summary="paper's SR model x2/x3/x4 (spec section 6; train with configs/paper-sr.toml)"))


_register_paper_sr()


def _register_paper_raw() -> None:
    from n3cli.models.raw import PAPER_RAW, describe_raw

    register(ModelSpec(name="n3net-raw-paper", config=PAPER_RAW, descriptor=describe_raw(PAPER_RAW),
                       arch="n3net-raw",
                       summary="paper's raw Poisson-Gaussian denoiser (spec section 5; train with "
                               "configs/paper-raw.toml)"))


_register_paper_raw()
