"""Integer bicubic upsampling: MATLAB's values (as bicubic-pytorch computes them) and
exactly the same on a tile as on the whole image (what exact tiled SR needs)."""

from __future__ import annotations

import pytest
import torch
from bicubic_pytorch import imresize

from n3cli.ops.bicubic import bicubic_upsample


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_matches_matlab_imresize_and_is_translation_invariant(scale):
    x = torch.rand(1, 2, 31, 26, dtype=torch.float64, generator=torch.Generator().manual_seed(scale))
    ours = bicubic_upsample(x, scale)
    ref = imresize(x.float(), sizes=(31 * scale, 26 * scale)).double()
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max() < 1e-5  # float32 rounding of the reference, borders included
    whole, part = ours, bicubic_upsample(x[..., 7:25, 5:20], scale)
    m = 3 * scale  # away from the part's own borders (its 2-tap context)
    assert torch.equal(whole[..., 7 * scale + m:25 * scale - m, 5 * scale + m:20 * scale - m],
                       part[..., m:18 * scale - m, m:15 * scale - m])
    flat = torch.full((1, 1, 5, 4), 0.25, dtype=torch.float64)
    assert torch.allclose(bicubic_upsample(flat, scale), torch.full((1, 1, 5 * scale, 4 * scale), 0.25,
                                                                    dtype=torch.float64))
