"""Batched crops, dihedral augmentation and noise synthesis (n3cli.data.degrade)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from n3cli.data.degrade import add_gaussian_noise, crop_batch, noise_level_map, sample_sigmas, to_8bit
from n3cli.data.folder import build_bank


def _dihedral(img: torch.Tensor) -> list[torch.Tensor]:
    out = []
    for t in (img, img.transpose(-1, -2)):
        for r in range(4):
            out.append(torch.rot90(t, r, dims=(-2, -1)))
    return out


def _variant(crop: torch.Tensor, variants: list[torch.Tensor]) -> int:
    for i, v in enumerate(variants):
        if torch.equal(crop, v):
            return i
    return -1


@pytest.mark.parametrize("augment,expected", [("dihedral", 8), ("vflip", 2), ("none", 1)])
def test_augmentation_variants(augment, expected):
    size = 6
    img = np.arange(size * size, dtype=np.uint8).reshape(size, size, 1)
    bank = build_bank([img], ["a"])
    variants = _dihedral(torch.from_numpy(img).permute(2, 0, 1))
    assert len({tuple(v.flatten().tolist()) for v in variants}) == 8
    gen = torch.Generator().manual_seed(0)
    crops = crop_batch(bank, torch.zeros(400, dtype=torch.long), size, gen, augment)
    seen = {_variant(c, variants) for c in crops}
    assert -1 not in seen, "a crop is not a dihedral transform of the image"
    assert len(seen) == expected
    if augment == "vflip":
        assert seen == {0, _variant(torch.flip(variants[0], dims=(-2,)), variants)}


def test_crops_come_from_their_image_and_cover_offsets():
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(9, 12), (14, 8), (10, 10)]]
    bank = build_bank(imgs, ["a", "b", "c"])
    gen = torch.Generator().manual_seed(1)
    idx = torch.tensor([0, 1, 2] * 100)
    crops = crop_batch(bank, idx, 7, gen, "none")
    assert crops.shape == (300, 3, 7, 7) and crops.dtype == torch.uint8
    corners = set()
    for i, c in zip(idx.tolist(), crops):
        src = torch.from_numpy(imgs[i]).permute(2, 0, 1)
        h, w = src.shape[1:]
        hits = [(y, x) for y in range(h - 6) for x in range(w - 6) if torch.equal(src[:, y:y + 7, x:x + 7], c)]
        assert hits, "crop not found in its source image"
        corners.add((i, hits[0]))
    # every valid offset of the 10x10 image (4 x 4 of them) gets drawn over 100 crops
    assert len([c for c in corners if c[0] == 2]) == 16


def test_bank_image_roundtrip():
    a = np.arange(24, dtype=np.uint8).reshape(4, 6, 1)
    b = np.full((3, 5, 1), 7, dtype=np.uint8)
    bank = build_bank([a, b], ["a", "b"])
    assert torch.equal(bank.image(0)[0], torch.from_numpy(a[..., 0]))
    assert torch.equal(bank.image(1)[0], torch.from_numpy(b[..., 0]))


def test_noise_statistics_and_not_clipped():
    clean = torch.full((4, 1, 64, 64), 0.5)
    sigma = torch.tensor([0.0, 10.0, 25.0, 75.0])
    noisy = add_gaussian_noise(clean, sigma, torch.Generator().manual_seed(0))
    std = (noisy - clean).flatten(1).std(dim=1)
    assert std[0] == 0
    assert torch.allclose(std[1:], sigma[1:] / 255, rtol=0.05)
    assert noisy.max() > 1 and noisy.min() < 0  # sigma 75 around 0.5: float, no clipping


def test_sample_sigmas_range_and_focus():
    gen = torch.Generator().manual_seed(0)
    s = sample_sigmas(20000, 0.0, 75.0, gen, torch.device("cpu"))
    assert s.min() >= 0 and s.max() <= 75 and abs(s.mean().item() - 37.5) < 1
    f = sample_sigmas(20000, 0.0, 75.0, gen, torch.device("cpu"), (15.0, 50.0), 0.5)
    inside = ((f >= 15) & (f <= 50)).float().mean().item()
    assert 0.70 < inside < 0.77  # 0.5 + 0.5 * 35/75 = 0.733


def test_noise_level_map():
    x = torch.zeros(3, 1, 5, 4)
    m = noise_level_map(x, torch.tensor([0.0, 25.5, 51.0]))
    assert m.shape == (3, 1, 5, 4)
    assert torch.equal(m[:, 0, 2, 1], torch.tensor([0.0, 0.1, 0.2]))


def test_as_real_file_clips_and_quantises_the_chosen_share():
    from n3cli.data.degrade import as_real_file

    gen = torch.Generator().manual_seed(0)
    clean = torch.full((400, 1, 4, 4), 0.02)
    noisy = add_gaussian_noise(clean, torch.full((400,), 25.0), gen)
    out = as_real_file(noisy, 0.5, gen)
    real = torch.isclose(out * 255, torch.round(out * 255), atol=1e-4).flatten(1).all(1) & (out >= 0).flatten(1).all(1)
    assert 150 < int(real.sum()) < 250  # about half, drawn per sample
    kept = ~real
    assert torch.equal(out[kept], noisy[kept])  # the rest untouched, still below 0 somewhere
    assert (out[kept] < 0).any()
    assert out.min() >= noisy.min()
    assert as_real_file(noisy, 0.0, gen) is noisy


def test_blind_task_real_prob_one_gives_8_bit_inputs():
    from n3cli.train.config import TaskConfig
    from n3cli.train.tasks import BlindGaussTask

    task = BlindGaussTask(TaskConfig(kind="blind-gauss", real_prob=1.0))
    clean = torch.rand(4, 1, 8, 8)
    inp, target, _ = task.make_batch(clean, torch.Generator().manual_seed(1))
    img = inp[:, :1]
    assert torch.equal(img, torch.round(img.clamp(0, 1) * 255) / 255)
    assert torch.equal(target, clean)


def test_to_8bit_is_one_rounding_for_numpy_and_torch():
    x = np.linspace(-0.1, 1.1, 2001)
    # Values at (or a rounding error off) the half steps, where two roundings would differ.
    x = np.concatenate([x, (np.arange(256) + 0.5) / 255.0])
    out_np = to_8bit(x)
    out_t = to_8bit(torch.from_numpy(x)).numpy()
    assert out_np.dtype == np.float32 and out_np.min() == 0.0 and out_np.max() == 1.0
    assert np.array_equal(np.round(out_np * 255.0), np.round(out_t * 255.0))
    assert len(np.unique(out_np)) == 256
