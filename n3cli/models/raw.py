"""N3Net for camera raw (architecture ``n3net-raw``): heteroscedastic Bayer denoising.

The network is an :class:`~n3cli.models.n3net.N3Net` whose input is one CFA plane
followed by two conditioning maps, ``a`` and ``b``, of the Poisson-Gaussian noise model
``variance = a * x + b`` (normalised units, x in [0, 1]); the block-0 residual carries
the noisy plane only (spec section 5). The descriptor says "Bayer planes, one at a time,
conditioned on a and b", so the engine runs each of the four half-resolution planes of a
mosaic with that plane's own (a, b), as constants or per-pixel maps, and needs nothing
else to know about raw files.

How the network sees the noise is the config's ``noise_input``:

- ``"ab"`` (the paper): the a and b maps themselves are input channels 2 and 3.
- ``"sigma"``: the model turns them into one map of the noise std,
  ``sqrt(a * mean5x5(clip(noisy)) + b)``, the input a blind Gaussian denoiser takes.
  a spans 1e-4..1e-1 and b about 3e-8..1e-2, far from the unit range a first convolution
  learns well; the std map is in the range of ``sigma / 255`` and lets training start
  from a trained ``n3net-blind`` (same tensors, ``n3 train --init``) instead of from zero.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F

from n3cli.models.arch import Architecture, register_arch
from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.n3net import N3Net
from n3cli.models.registry import descriptor_for

RAW_CONDITIONING = ("a", "b")
NOISE_INPUTS = ("ab", "sigma")
SIGNAL_WINDOW = 5  # the local mean the "sigma" input evaluates a*x + b at (as the engine's sigma map)


@dataclass(frozen=True)
class RawConfig(N3NetConfig):
    """An N3Net config plus how the noise model enters the network (``noise_input``).

    ``in_channels`` is what the model takes (plane, a, b: always 3); the N3Net inside
    takes 3 (``"ab"``) or 2 (``"sigma"``: plane, std map) channels."""

    in_channels: int = 3
    noise_input: str = "ab"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.noise_input not in NOISE_INPUTS:
            raise ValueError(f"noise_input must be one of {', '.join(NOISE_INPUTS)}, not {self.noise_input!r}")

    def network(self) -> N3NetConfig:
        """The config of the N3Net that runs on the (possibly transformed) input."""
        base = {f.name: getattr(self, f.name) for f in fields(N3NetConfig)}
        base["in_channels"] = 3 if self.noise_input == "ab" else 2
        return N3NetConfig(**base)


#: The paper's raw model (spec section 5): 128 features, depth 9, 32 intermediate
#: channels, k = 3, the gray model's N3 geometry; its weights were never released.
PAPER_RAW = RawConfig(image_channels=1, in_channels=3, out_channels=1, features=128, depth=9,
                      n3_channels=32, k=3)


def std_map(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) = [plane, a, b] -> (B, 2, H, W) = [plane, sqrt(a * local mean + b)].

    The local mean is of the plane clipped to [0, 1], over a 5x5 window (reflect at the
    borders, replicate where the input is too small), so tiles see what the whole image
    sees once the halo covers the 2 extra pixels."""
    plane, a, b = x[:, :1], x[:, 1:2], x[:, 2:3]
    r = SIGNAL_WINDOW // 2
    mode = "reflect" if min(x.shape[-2:]) > r else "replicate"
    padded = F.pad(plane.clamp(0.0, 1.0), (r, r, r, r), mode=mode)
    signal = F.avg_pool2d(padded, SIGNAL_WINDOW, stride=1)
    return torch.cat([plane, (a * signal + b).clamp_min(0.0).sqrt()], dim=1)


def as_raw_config(cfg: N3NetConfig) -> RawConfig:
    """``cfg`` as a :class:`RawConfig` (a plain N3Net config means the paper's a, b input)."""
    return cfg if isinstance(cfg, RawConfig) else RawConfig(**cfg.to_dict())


class RawN3Net(N3Net):
    """An N3Net over [plane, a, b]; with ``noise_input = "sigma"`` the a and b maps become
    one std map first. Its tensors are exactly an N3Net's (of ``config.network()``)."""

    def __init__(self, config: RawConfig):
        config = as_raw_config(config)
        super().__init__(config.network())
        self.raw_config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.raw_config.noise_input == "sigma":
            x = std_map(x)
        return super().forward(x)


def describe_raw(cfg: RawConfig, **kw) -> ModelDescriptor:
    """Descriptor of a raw model: the N3Net geometry of :func:`descriptor_for`, Bayer
    packing, conditioned on the ``a`` and ``b`` maps (``kw`` sets task fields)."""
    cfg = as_raw_config(cfg)
    if cfg.image_channels != 1 or cfg.in_channels != 1 + len(RAW_CONDITIONING) or cfg.out_channels != 1:
        raise ValueError("an n3net-raw model takes one CFA plane and the a and b maps "
                         "(image_channels 1, in_channels 3, out_channels 1)")
    base = replace(descriptor_for(cfg.network()), task="raw-denoise", packing="bayer",
                   conditioning=RAW_CONDITIONING)
    if cfg.noise_input == "sigma":
        base = replace(base, halo=base.halo + SIGNAL_WINDOW // 2)
    return replace(base, **kw)


register_arch(Architecture("n3net-raw", RawConfig, RawN3Net, describe_raw))
