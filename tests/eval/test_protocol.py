"""The evaluation protocols, checked with an identity "model" whose score is the noise's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from n3cli.eval import evaluate, evaluate_many, psnr
from n3cli.models import ModelSpec, N3NetConfig, descriptor_for

SPEC = ModelSpec("identity", N3NetConfig(), descriptor_for(N3NetConfig(), sigma=25.0))


class Identity(nn.Module):
    """Returns the noisy input: PSNR/SSIM then measure the protocol's noise alone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1]


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "Set12").mkdir()
    (tmp_path / "CBSD68").mkdir()
    (tmp_path / "BSD68").mkdir()
    imgs = {}
    for name, shape in (("01", (20, 24)), ("02", (16, 18))):
        imgs[name] = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(imgs[name]).save(tmp_path / "Set12" / f"{name}.png")
        Image.fromarray(imgs[name]).save(tmp_path / "BSD68" / f"{name}.png")
    imgs["c1"] = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
    Image.fromarray(imgs["c1"]).save(tmp_path / "CBSD68" / "c1.png")
    imgs["c1_gray"] = np.asarray(Image.fromarray(imgs["c1"]).convert("L", (0.2989, 0.5870, 0.1140, 0)))
    return tmp_path, imgs


def _paper_noise_psnr(gen, clean, sigma=25.0):
    """The paper protocol by hand: CHW float image + randn(shape) * sigma/255."""
    t = torch.from_numpy(clean.transpose(2, 0, 1).copy())[None].float() / 255
    noisy = t + torch.randn(t.shape, generator=gen) * sigma / 255
    return psnr(t.numpy(), noisy.numpy())


def test_paper_protocol_noise_stream(data):
    root, imgs = data
    results = evaluate_many(Identity(), SPEC, ["set12", "bsd68"], 25, data_dir=root)
    gen = torch.Generator().manual_seed(1234)
    expect = [_paper_noise_psnr(gen, imgs[n][..., None]) for n in ("01", "02")]
    expect.append(_paper_noise_psnr(gen, imgs["c1_gray"][..., None]))  # stream continues
    got = [im.psnr for r in results for im in r.images]
    assert got == pytest.approx(expect, abs=1e-5)
    assert [im.name for im in results[0].images] == ["01", "02"]
    assert results[0].mean_psnr == pytest.approx(np.mean(expect[:2]), abs=1e-5)
    # A set evaluated alone starts the seed itself.
    alone = evaluate(Identity(), SPEC, "bsd68", 25, data_dir=root)
    gen = torch.Generator().manual_seed(1234)
    assert alone.images[0].psnr == pytest.approx(_paper_noise_psnr(gen, imgs["c1_gray"][..., None]), abs=1e-5)
    assert alone.images[0].psnr != pytest.approx(got[2], abs=1e-3)
    # Deterministic, and around the noise's own PSNR (20 log10(255/25) = 20.17 dB).
    again = evaluate_many(Identity(), SPEC, ["set12", "bsd68"], 25, data_dir=root)
    assert [im.psnr for r in again for im in r.images] == got
    assert all(19.5 < p < 21 for p in got)


def test_colour_set_draws_noise_in_rgb(data):
    root, imgs = data
    res = evaluate(Identity(), SPEC, "cbsd68", 25, data_dir=root, gray_on_color="rgb")
    gen = torch.Generator().manual_seed(1234)
    assert res.images[0].psnr == pytest.approx(_paper_noise_psnr(gen, imgs["c1"]), abs=1e-5)


def test_kair_protocol(data):
    root, imgs = data
    res = evaluate(Identity(), SPEC, "bsd68", 25, protocol="kair", data_dir=root)
    for name, score in zip(("01", "02"), res.images):
        np.random.seed(0)
        clean = imgs[name][..., None]
        noisy = clean.astype(np.float32) / 255
        noisy += np.random.normal(0, 25 / 255, noisy.shape)
        out = np.round(np.clip(noisy, 0, 1) * 255)
        assert score.psnr == pytest.approx(psnr(clean.astype(float), out, peak=255.0), abs=1e-9)
    # Each image is seeded alone: the first image scores the same whatever comes before.
    one = evaluate(Identity(), SPEC, "bsd68", 25, protocol="kair", data_dir=root, limit=1)
    assert one.images[0].psnr == res.images[0].psnr and len(one.images) == 1


def test_real_protocol_is_the_paper_stream_clipped_to_8_bits(data):
    root, imgs = data
    paper = evaluate(Identity(), SPEC, "set12", 25, data_dir=root)
    real = evaluate(Identity(), SPEC, "set12", 25, protocol="real", data_dir=root)
    assert real.protocol == "real" and len(real.images) == 2
    gen = torch.Generator().manual_seed(1234)
    for name, score in zip(("01", "02"), real.images):
        t = torch.from_numpy(imgs[name][None, None].copy()).float() / 255
        noisy = (t + torch.randn(t.shape, generator=gen) * 25 / 255).numpy()
        held = np.round(np.clip(noisy, 0, 1) * 255) / 255  # what an 8-bit noisy PNG holds
        assert score.psnr == pytest.approx(psnr(t.numpy(), held), abs=1e-4)
    # Clipping the noise of random 0..255 images removes part of it: real scores higher.
    assert all(r.psnr > p.psnr + 0.1 for r, p in zip(real.images, paper.images))
