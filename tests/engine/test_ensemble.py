"""Geometric self-ensemble: exact inverses, averaging, and exact tiling preserved."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from n3cli.engine import restore_image, sigma_conditions
from n3cli.engine.ensemble import _DIHEDRAL, _apply, _invert, check_ensemble, self_ensemble
from n3cli.models import N3Net, N3NetConfig, descriptor_for

CPU = torch.device("cpu")
TINY = N3NetConfig(features=8, depth=3, embed_features=8, embed_depth=2, n3_channels=4, k=2,
                   window=5)


@pytest.mark.parametrize("turns,flip", _DIHEDRAL)
def test_every_transform_is_inverted_exactly_on_non_square_images(turns, flip):
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).reshape(1, 2, 5, 7)
    assert torch.equal(_invert(_apply(x, turns, flip), turns, flip), x)


def test_ensemble_averages_the_transformed_passes():
    x = torch.rand(1, 1, 6, 9)
    # An operator that is not equivariant: adds a horizontal ramp.
    ramp = torch.linspace(0, 1, 9)

    def fn(t: torch.Tensor) -> torch.Tensor:
        return t + torch.linspace(0, 1, t.shape[-1])
    assert torch.allclose(self_ensemble(fn, x, 1), x + ramp)
    # identity + horizontal flip: the ramp and its mirror average to a constant 0.5.
    assert torch.allclose(self_ensemble(fn, x, 2), x + 0.5, atol=1e-6)
    with pytest.raises(ValueError):
        check_ensemble(3)


def test_ensemble_with_exact_tiling_equals_untiled_ensemble():
    torch.manual_seed(0)
    net = N3Net(TINY).eval()
    desc = descriptor_for(TINY)
    img = np.random.default_rng(1).random((70, 90, 1), dtype=np.float32)
    whole = restore_image(net, desc, img, sigma_conditions(25.0), CPU, tile=0, ensemble=4)
    tiled = restore_image(net, desc, img, sigma_conditions(25.0), CPU, tile=30, mode="exact", ensemble=4)
    plain = restore_image(net, desc, img, sigma_conditions(25.0), CPU, tile=0)
    assert np.abs(whole - tiled).max() <= 1e-5
    assert np.abs(whole - plain).max() > 1e-4  # the ensemble did change the result
