"""The n3net-sr family: both layouts, shapes, the bicubic residual, the registry."""

from __future__ import annotations

import pytest
import torch

from n3cli.models import ModelSpec
from n3cli.models.arch import arch_names, get_arch
from n3cli.models.sr import N3NetSR, SRConfig
from n3cli.ops.bicubic import bicubic_upsample

SMALL = dict(features=8, depth=3, embed_features=8, k=2, window=3, tail_channels=4)


@pytest.mark.parametrize("layout", ["lr", "hr"])
def test_output_is_scale_times_input(layout):
    torch.manual_seed(0)
    net = N3NetSR(SRConfig(layout=layout, **SMALL)).eval()
    x = torch.rand(2, 1, 20, 17)
    for s in (2, 3, 4):
        assert net(x, s).shape == (2, 1, 20 * s, 17 * s)
        assert net.at_scale(s)(x).shape == (2, 1, 20 * s, 17 * s)
    with pytest.raises(ValueError, match="upscales by"):
        net(x, 5)


def test_lr_layout_starts_as_bicubic_and_uses_one_tail_per_scale():
    torch.manual_seed(0)
    net = N3NetSR(SRConfig(layout="lr", **SMALL)).eval()
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        gap = (net(x, 2) - bicubic_upsample(x, 2)).abs().max().item()
    assert 0 < gap < 0.05  # tails start near zero: the residual is learnt
    assert set(net.tails) == {"2", "3", "4"}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # paper: no BN


def test_paper_sr_config_matches_spec_section_6():
    cfg = SRConfig()  # defaults: the paper's model
    body = cfg.body()
    assert (cfg.layout, cfg.scales, body.depth, body.features, body.k, body.num_n3, body.batchnorm) == \
        ("hr", (2, 3, 4), 7, 64, 7, 2, False)
    # The lr layout is cheaper per output pixel by about s^2 (what a CPU budget needs).
    lr = SRConfig(layout="lr")
    assert cfg.macs_per_output_pixel(2) / lr.macs_per_output_pixel(2) > 3.5


def test_registry_dispatch_builds_and_describes():
    assert {"n3net", "n3net-sr"} <= set(arch_names())
    arch = get_arch("n3net-sr")
    cfg = arch.config_from_dict({"layout": "lr", "scales": [2, 4], **SMALL})
    spec = ModelSpec("toy-sr", cfg, arch.describe(cfg, scale=2), arch="n3net-sr")
    assert isinstance(spec.build(), N3NetSR) and spec.descriptor.scale == 2
    assert spec.descriptor.min_size == (cfg.window - 1) * cfg.stride + cfg.patch  # in LR pixels
    with pytest.raises(ValueError, match="unknown architecture"):
        get_arch("vdsr")
    with pytest.raises(ValueError, match="unknown n3net-sr config keys"):
        arch.config_from_dict({"unshuffle": 2})
