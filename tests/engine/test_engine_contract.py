"""The engine reads only descriptors: a toy architecture registered here (scale 2, two
per-pixel conditioning maps, no N3 at all) runs through the tiled engine unchanged, and
the SR family tiles exactly at every scale."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.engine import restore_image
from n3cli.models import ModelSpec
from n3cli.models.arch import Architecture, get_arch, register_arch
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.sr import N3NetSR, SRConfig

CPU = torch.device("cpu")


@dataclass(frozen=True)
class ToyConfig:
    features: int = 6

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


class ToyUpscaler(nn.Module):
    """[image, a, b] -> 3x3 conv -> ReLU -> 3x3 conv -> pixel shuffle 2 (+ nearest image)."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.c1 = nn.Conv2d(3, cfg.features, 3, padding=1)
        self.c2 = nn.Conv2d(cfg.features, 4, 3, padding=1)

    def forward(self, x):
        r = F.pixel_shuffle(self.c2(torch.relu(self.c1(x))), 2)
        return F.interpolate(x[:, :1], scale_factor=2, mode="nearest") + r


def describe_toy(cfg: ToyConfig, **kw) -> ModelDescriptor:
    return ModelDescriptor(task="sr", image_channels=1, packing="gray", conditioning=("a", "b"), scale=2,
                           min_size=1, halo=2, tile_quantum=1, macs_per_pixel=9 * 3 * cfg.features * 2,
                           bytes_per_pixel=64, **kw)


register_arch(Architecture("toy-upscaler", ToyConfig, ToyUpscaler, describe_toy))


def test_a_registered_toy_architecture_runs_tiled_without_engine_changes():
    arch = get_arch("toy-upscaler")
    spec = ModelSpec("toy", ToyConfig(), arch.describe(ToyConfig()), arch="toy-upscaler")
    torch.manual_seed(0)
    net = spec.build()
    rng = np.random.default_rng(0)
    img = rng.random((45, 38, 1), dtype=np.float32)
    a, b = rng.random((45, 38), dtype=np.float32), 0.3  # a per-pixel map and a constant one
    whole = restore_image(net, spec.descriptor, img, {"a": a, "b": b}, CPU, tile=0)
    tiled = restore_image(net, spec.descriptor, img, {"a": a, "b": b}, CPU, tile=16, mode="exact")
    assert whole.shape == (90, 76, 1)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    blend = restore_image(net, spec.descriptor, img, {"a": a, "b": b}, CPU, tile=16, mode="blend",
                          tile_overlap=12)
    # Blending in output space: only the low-weight rim of each tile (within the halo of
    # its edge) differs from the whole-image output.
    assert blend.shape == whole.shape and 0 < np.abs(blend - whole).max() < 0.01
    # Colour through a gray-packed model: per channel, at scale 2.
    rgb = rng.random((20, 22, 3), dtype=np.float32)
    assert restore_image(net, spec.descriptor, rgb, {"a": 0.1, "b": 0.2}, CPU, tile=0).shape == (40, 44, 3)
    with pytest.raises(ValueError, match="'b' map"):
        restore_image(net, spec.descriptor, img, {"a": a}, CPU, tile=0)


SMALL = dict(features=8, depth=3, embed_features=8, k=2, window=3, tail_channels=4)


def _trained_looking(net: N3NetSR) -> N3NetSR:
    """Residuals and N3 logits of a trained model's size. A fresh BatchNorm-free net has
    outputs ~10 and ill-conditioned N3 softmaxes, which turn float32 rounding into 1e-3
    differences between any two summation orders (tiled or not)."""
    from n3cli.models.blocks import LocalCNN, N3Block

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, LocalCNN):
                m.conv2.weight.mul_(0.05)
            elif isinstance(m, N3Block):
                m.embedcnn[-1].weight.mul_(0.1)
                m.tempcnn[-1].weight.mul_(0.1)
    return net.eval()


@pytest.mark.parametrize("layout", ["lr", "hr"])
@pytest.mark.parametrize("scale", [2, 3])
def test_sr_exact_tiling_equals_the_whole_image(layout, scale):
    cfg = SRConfig(layout=layout, **SMALL)
    torch.manual_seed(1)
    net = _trained_looking(N3NetSR(cfg))
    desc = get_arch("n3net-sr").describe(cfg, scale=scale)
    size = 180 if layout == "lr" else 120  # 3x3 tiles or more, even with the lr layout's 56 px halo
    img = np.random.default_rng(scale).random((size, size - 9, 1), dtype=np.float32)
    whole = restore_image(net.at_scale(scale), desc, img, None, CPU, tile=0)
    seen = []
    tiled = restore_image(net.at_scale(scale), desc, img, None, CPU, tile=24, mode="exact",
                          progress=lambda done, total: seen.append(total))
    assert whole.shape == (size * scale, (size - 9) * scale, 1) and seen[-1] >= 9
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_luminance_packing_runs_y_and_resizes_chroma():
    """A "y" model whose network is the plain bicubic (tails zeroed) gives back the bicubic
    upscaling of each RGB channel (colour space conversions are exact in float)."""
    from n3cli.engine.resample import bicubic_resize

    cfg = SRConfig(layout="lr", **SMALL)
    net = N3NetSR(cfg).eval()
    for tail in net.tails.values():
        nn.init.zeros_(tail.weight)
        nn.init.zeros_(tail.bias)
    desc = get_arch("n3net-sr").describe(cfg, scale=2)
    rgb = np.random.default_rng(3).random((30, 26, 3), dtype=np.float32)
    out = restore_image(net.at_scale(2), desc, rgb, None, CPU, tile=0)
    np.testing.assert_allclose(out, bicubic_resize(rgb, 60, 52), atol=1e-5)
    gray = rgb[..., :1]
    np.testing.assert_allclose(restore_image(net.at_scale(2), desc, gray, None, CPU, tile=0),
                               bicubic_resize(gray, 60, 52), atol=1e-5)
