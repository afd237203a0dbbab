"""N3Net for single-image super-resolution (architecture ``n3net-sr``).

Two layouts of one family, both taking the low-resolution luminance (B, 1, h, w) in
[0, 1] and returning (B, 1, s*h, s*w), with a global residual on the MATLAB-compatible
bicubic upsampling (:func:`n3cli.ops.bicubic.bicubic_upsample`, MATLAB's, exact in tiles):

- ``layout = "hr"``: the paper's model (spec section 6): the bicubic upsampling is the
  input of three VDSR-style CNNs (depth 7, 64 features, no BatchNorm) with two N3 blocks
  (k = 7) between them, one model for every scale. Runs at the output resolution.
- ``layout = "lr"``: the CPU-trainable variant: the same N3Net body on the
  low-resolution image, then one small tail per scale (3x3 conv to s*s channels and a
  pixel shuffle) added to the bicubic upsampling. The body is shared by all scales and
  costs 1/s^2 of the "hr" layout per output pixel.

``model.at_scale(s)`` is a module with ``forward(x)``, for the engine, whose
descriptor says the scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.models.arch import Architecture, register_arch
from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.n3net import N3Net
from n3cli.models.registry import dependency_radius, n3_window_pixels, n3net_bytes_per_pixel
from n3cli.ops.bicubic import bicubic_upsample

BICUBIC_RADIUS = 2  # the cubic kernel's support on the low-resolution grid (4 taps)


@dataclass(frozen=True)
class SRConfig:
    """Hyper-parameters of an ``n3net-sr`` model (defaults: the paper's SR network)."""

    scales: tuple[int, ...] = (2, 3, 4)
    layout: str = "hr"  # "hr": paper (body on the bicubic upsampling); "lr": body on the LR image
    features: int = 64
    depth: int = 7
    n3_channels: int = 8
    embed_features: int = 64
    embed_out: int = 8
    embed_depth: int = 3
    k: int = 7
    patch: int = 10
    stride: int = 5
    window: int = 15
    num_n3: int = 2
    batchnorm: bool = False
    tail_channels: int = 32  # "lr": body output channels feeding the per-scale tails

    def __post_init__(self) -> None:
        if self.layout not in ("hr", "lr"):
            raise ValueError(f"layout must be hr or lr, not {self.layout!r}")
        if not self.scales or any(int(s) < 2 for s in self.scales):
            raise ValueError("scales must be integers >= 2")
        object.__setattr__(self, "scales", tuple(sorted({int(s) for s in self.scales})))
        self.body()  # validates the N3 hyper-parameters

    def body(self) -> N3NetConfig:
        """The N3Net that does the work (one image plane in)."""
        return N3NetConfig(image_channels=1, in_channels=1,
                           out_channels=1 if self.layout == "hr" else self.tail_channels,
                           features=self.features, depth=self.depth, n3_channels=self.n3_channels,
                           embed_features=self.embed_features, embed_out=self.embed_out,
                           embed_depth=self.embed_depth, k=self.k, patch=self.patch,
                           stride=self.stride, window=self.window, num_n3=self.num_n3,
                           batchnorm=self.batchnorm)

    def macs_per_output_pixel(self, scale: int) -> float:
        """Nominal multiply-adds per output pixel (the body's, scaled by where it runs)."""
        body = self.body().macs_per_pixel()
        if self.layout == "hr":
            return body
        return body / scale**2 + 9 * self.tail_channels  # tail: s*s outputs per LR pixel

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SRConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown n3net-sr config keys: {sorted(unknown)}")
        d = dict(d)
        if "scales" in d:
            d["scales"] = tuple(d["scales"])
        return cls(**d)


class N3NetSR(nn.Module):
    """See the module docstring; ``forward(x, scale)``."""

    def __init__(self, config: SRConfig):
        super().__init__()
        self.config = config
        self.body = N3Net(config.body())
        if config.layout == "lr":
            self.tails = nn.ModuleDict({str(s): nn.Conv2d(config.tail_channels, s * s, 3, padding=1)
                                        for s in config.scales})
            for tail in self.tails.values():  # start as plain bicubic: the residual is learnt
                nn.init.normal_(tail.weight, 0.0, 1e-3)
                nn.init.zeros_(tail.bias)

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        if scale not in self.config.scales:
            raise ValueError(f"this model upscales by {self.config.scales}, not {scale}")
        up = bicubic_upsample(x, scale)
        if self.config.layout == "hr":
            return self.body(up)  # the body's residual paths carry the bicubic image
        r = F.pixel_shuffle(self.tails[str(scale)](self.body(x)), scale)
        return up + r

    def at_scale(self, scale: int) -> nn.Module:
        """A view with ``forward(x)`` that upscales by ``scale`` (shares the parameters)."""
        return _AtScale(self, scale)


class _AtScale(nn.Module):
    def __init__(self, net: N3NetSR, scale: int):
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.scale)


def describe_sr(cfg: SRConfig, **kw) -> ModelDescriptor:
    """Descriptor of an SR model at ``scale`` (default: the largest offered); every size
    is in input (low-resolution) pixels, where the "hr" layout's body runs on
    ``scale``-times more pixels than it reads."""
    scale = int(kw.pop("scale", max(cfg.scales)))
    if scale not in cfg.scales:
        raise ValueError(f"scale {scale} is not among {list(cfg.scales)}")
    body = cfg.body()
    radius = dependency_radius(body)
    grid = 1 if cfg.layout == "lr" else scale  # body pixels per input pixel, per axis
    if cfg.layout == "hr":
        min_size = -(-n3_window_pixels(body) // scale)
        halo = -(-radius // scale) + BICUBIC_RADIUS
        # The N3 patch grid (stride in body pixels) lines up with tiles starting at
        # multiples of the stride in input pixels, whatever the scale.
    else:
        min_size = n3_window_pixels(body)
        halo = radius + 1 + BICUBIC_RADIUS  # + the tail convolution
    base = ModelDescriptor(task="sr", image_channels=1, packing="y", scale=scale, scales=cfg.scales,
                           min_size=min_size, halo=halo, tile_quantum=body.stride,
                           macs_per_pixel=cfg.macs_per_output_pixel(scale) * scale**2,
                           bytes_per_pixel=n3net_bytes_per_pixel(body) * grid**2 + 4 * 2 * scale**2,
                           supports_half=True)
    return replace(base, **kw)


register_arch(Architecture("n3net-sr", SRConfig, N3NetSR, describe_sr))
