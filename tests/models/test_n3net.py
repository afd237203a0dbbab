"""N3Net architecture: shapes, configs, key layout, robustness to any input size."""

from __future__ import annotations

import pytest
import torch

from n3cli.models import N3Net, N3NetConfig, get_spec, list_specs
from n3cli.models.n3net import conv_twin
from n3cli.models.registry import dependency_radius

TINY = N3NetConfig(features=8, depth=3, embed_features=8, embed_depth=2, n3_channels=4, k=2)


def test_paper_config_matches_released_layout():
    net = N3Net(N3NetConfig())
    keys = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    assert len(keys) == 140  # the released checkpoints hold exactly 140 tensors
    assert net.state_dict()["blocks.2.conv2.weight"].shape == (1, 64, 3, 3)
    assert net.state_dict()["nls.0.tempcnn.6.weight"].shape == (1, 64, 3, 3)
    assert "nls.1.dist_bn.running_var" in net.state_dict()
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(706_000, rel=0.01)


@pytest.mark.parametrize("size", [(1, 1), (2, 7), (9, 10), (31, 80), (81, 95)])
def test_any_size_gives_finite_output_of_same_size(size):
    net = N3Net(TINY).eval()
    x = torch.rand(1, 1, *size)
    with torch.inference_mode():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_color_blind_config_shapes_and_residual_channels():
    cfg = N3NetConfig(image_channels=3, in_channels=4, out_channels=3, features=8, depth=3,
                      embed_features=8, embed_depth=2, n3_channels=8, k=2)
    net = N3Net(cfg).eval()
    assert net.blocks[0].residual == 3  # the noise map is not added to the image path
    with torch.inference_mode():
        y = net(torch.rand(2, 4, 40, 45))
    assert y.shape == (2, 3, 40, 45)


def test_unshuffled_variant_restores_size():
    cfg = N3NetConfig(features=8, depth=3, embed_features=8, embed_depth=2, k=2, unshuffle=2)
    net = N3Net(cfg).eval()
    with torch.inference_mode():
        y = net(torch.rand(1, 1, 37, 50))
    assert y.shape == (1, 1, 37, 50)


def test_zero_cnn_weights_make_the_network_an_identity():
    """With every conv zeroed, only the residual paths remain: output == noisy input.

    This checks that the noisy image is carried through channel 0 of every stage and
    through the N3 output's x slice, as in the released models.
    """
    net = N3Net(TINY).eval()
    with torch.no_grad():
        for b in net.blocks:
            for p in b.parameters():
                p.zero_()
    x = torch.rand(1, 1, 50, 60)
    with torch.inference_mode():
        assert torch.allclose(net(x), x, atol=1e-6)


def test_training_mode_backpropagates_to_every_used_parameter():
    net = N3Net(TINY).train()
    x = torch.rand(2, 1, 40, 40)
    net(x).pow(2).sum().backward()
    unused = {n for n, p in net.named_parameters() if p.grad is None}
    assert unused == {f"blocks.{i}.bn1.{w}" for i in range(3) for w in ("weight", "bias")}


def test_conv_twin_has_same_convolutions():
    twin = conv_twin(TINY)
    with torch.inference_mode():
        assert twin.eval()(torch.rand(1, 1, 30, 30)).shape == (1, 1, 30, 30)


def test_registry_names_and_descriptors():
    names = [s.name for s in list_specs()]
    for s in (25, 50, 70):
        spec = get_spec(f"n3net-paper-s{s}")
        assert f"n3net-paper-s{s}" in names
        assert spec.descriptor.sigma == s and not spec.descriptor.noise_map
        assert spec.descriptor.halo == dependency_radius(spec.config) > 0
    assert get_spec("no-such-model") is None


def test_config_roundtrip_and_validation():
    assert N3NetConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError):
        N3NetConfig.from_dict({"features": 8, "bogus": 1})
    with pytest.raises(ValueError):
        N3NetConfig(in_channels=1, image_channels=3)


def test_config_refuses_n3_width_that_cannot_carry_the_image():
    # 3 colour planes unshuffled by 2 are 12 planes: 8 N3 channels would drop the blue ones
    # from the residual path (a real bug of an early colour recipe).
    with pytest.raises(ValueError, match="n3_channels"):
        N3NetConfig(image_channels=3, in_channels=4, out_channels=3, unshuffle=2, n3_channels=8)
    N3NetConfig(image_channels=3, in_channels=4, out_channels=3, unshuffle=2, n3_channels=12)


def test_macs_per_pixel_matches_the_spec_arithmetic():
    # Spec section 7, 256x256: ~46 G multiply-adds for the convolutions plus 0.45 G + 3.1 G
    # per N3 block (distances + aggregation).
    spec = (46e9 + 2 * (0.45e9 + 3.1e9)) / (256 * 256)
    assert N3NetConfig().macs_per_pixel() == pytest.approx(spec, rel=0.02)
    # Pixel-unshuffle 2 runs everything at quarter resolution on 4x the input planes.
    half = N3NetConfig(unshuffle=2, n3_channels=8)
    assert half.macs_per_pixel() < N3NetConfig().macs_per_pixel() / 3.5
