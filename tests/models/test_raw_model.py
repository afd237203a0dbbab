"""The raw family: an N3Net on one CFA plane conditioned on a and b maps, described as
Bayer packing so that the engine runs each plane with its own noise model, tiled exactly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from n3cli.engine import restore_image
from n3cli.engine.runner import plane_conditions
from n3cli.models.arch import get_arch
from n3cli.models.config import N3NetConfig
from n3cli.models.n3net import N3Net
from n3cli.models.raw import RawConfig, std_map
from n3cli.models.registry import get_spec

CPU = torch.device("cpu")
TINY = N3NetConfig(image_channels=1, in_channels=3, out_channels=1, features=8, depth=3, n3_channels=4,
                   embed_features=8, embed_out=4, k=2, patch=6, stride=3, window=5, batchnorm=False)


def test_paper_raw_spec_follows_section_5():
    spec = get_spec("n3net-raw-paper")
    c, d = spec.config, spec.descriptor
    assert (c.in_channels, c.features, c.depth, c.n3_channels, c.k) == (3, 128, 9, 32, 3)
    assert d.task == "raw-denoise" and d.packing == "bayer" and d.conditioning == ("a", "b")
    assert d.image_channels == 1 and spec.arch == "n3net-raw"


def test_raw_descriptor_refuses_a_config_without_a_and_b():
    with pytest.raises(ValueError, match="a and b"):
        get_arch("n3net-raw").describe(N3NetConfig(in_channels=2))


def test_plane_conditions_index_per_plane_values_and_share_the_rest():
    m = np.zeros((4, 5, 2), np.float32)
    got = plane_conditions({"a": [1.0, 2.0], "b": 0.5, "c": m}, 1, 2)
    assert got["a"] == 2.0 and got["b"] == 0.5 and got["c"].shape == (4, 5)
    with pytest.raises(ValueError, match="per-plane"):
        plane_conditions({"a": [1.0, 2.0, 3.0]}, 0, 2)


def test_engine_runs_each_bayer_plane_with_its_own_noise_model_and_tiles_exactly():
    arch = get_arch("n3net-raw")
    torch.manual_seed(0)
    net = arch.build(TINY).eval()
    desc = arch.describe(TINY)
    rng = np.random.default_rng(0)
    planes = rng.random((40, 48, 4), dtype=np.float32)
    a, b = [1e-3, 2e-3, 5e-3, 1e-2], [1e-5, 2e-5, 4e-5, 8e-5]
    whole = restore_image(net, desc, planes, {"a": a, "b": b}, CPU, tile=0)
    assert whole.shape == planes.shape
    one_plane = replace(desc, packing="gray")  # the same model fed one plane by hand
    for i in range(4):
        alone = restore_image(net, one_plane, planes[..., i:i + 1], {"a": a[i], "b": b[i]}, CPU, tile=0)
        np.testing.assert_allclose(whole[..., i], alone[..., 0], atol=1e-6)
    # Swapping two planes' noise models changes those planes only.
    swapped = restore_image(net, desc, planes, {"a": [a[1], a[0], *a[2:]], "b": b}, CPU, tile=0)
    assert not np.allclose(swapped[..., 0], whole[..., 0]) and np.allclose(swapped[..., 2:], whole[..., 2:])
    # Per-pixel maps (spatially varying noise) tile exactly.
    amap = np.stack([np.full((40, 48), v, np.float32) * (1 + np.linspace(0, 1, 48)) for v in a], -1)
    ref = restore_image(net, desc, planes, {"a": amap, "b": b}, CPU, tile=0)
    tiled = restore_image(net, desc, planes, {"a": amap, "b": b}, CPU, tile=16, mode="exact")
    np.testing.assert_allclose(tiled, ref, atol=1e-5)


def test_sigma_input_is_a_blind_network_on_the_std_map():
    """noise_input "sigma": the same tensors as an N3Net on [plane, sqrt(a*mean5(x)+b)],
    so a trained n3net-blind loads into it strictly (n3 train --init)."""
    cfg = RawConfig(**{**TINY.to_dict(), "noise_input": "sigma"})
    arch = get_arch("n3net-raw")
    torch.manual_seed(0)
    raw = arch.build(cfg).eval()
    blind = N3Net(cfg.network()).eval()
    assert cfg.network().in_channels == 2
    blind.load_state_dict(raw.state_dict(), strict=True)
    x = torch.rand(1, 1, 30, 34) * 1.2 - 0.1  # noisy planes leave [0, 1]
    a, b = torch.full_like(x, 4e-3), torch.full_like(x, 1e-5)
    inp = torch.cat([x, a, b], 1)
    with torch.no_grad():
        np.testing.assert_allclose(raw(inp).numpy(), blind(std_map(inp)).numpy(), atol=1e-6)
    sig = std_map(inp)[:, 1]
    # Centre pixel: the 5x5 mean of the clipped plane.
    m = x[0, 0, 10:15, 10:15].clamp(0, 1).mean()
    assert torch.isclose(sig[0, 12, 12], (4e-3 * m + 1e-5).sqrt(), atol=1e-6)
    # The paper's input is a different network (3 input channels): the two do not mix.
    assert RawConfig(**TINY.to_dict()).network().in_channels == 3


def test_sigma_input_tiles_exactly_with_per_pixel_maps():
    cfg = RawConfig(**{**TINY.to_dict(), "noise_input": "sigma"})
    arch = get_arch("n3net-raw")
    torch.manual_seed(1)
    net = arch.build(cfg).eval()
    desc = arch.describe(cfg)
    assert desc.halo == arch.describe(TINY).halo + 2  # the 5x5 signal mean reaches 2 px further
    rng = np.random.default_rng(1)
    planes = rng.random((44, 52, 4), dtype=np.float32)
    amap = np.stack([np.full((44, 52), v, np.float32) * (1 + np.linspace(0, 1, 52)) for v in (1e-3, 2e-3, 4e-3, 8e-3)], -1)
    ref = restore_image(net, desc, planes, {"a": amap, "b": [1e-5] * 4}, CPU, tile=0)
    tiled = restore_image(net, desc, planes, {"a": amap, "b": [1e-5] * 4}, CPU, tile=16, mode="exact")
    np.testing.assert_allclose(tiled, ref, atol=1e-5)


def test_unknown_noise_input_is_refused():
    with pytest.raises(ValueError, match="noise_input"):
        RawConfig(noise_input="log")
