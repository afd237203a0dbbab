"""Poisson-Gaussian noise: synthesis (numpy and batched torch) and the Foi-style estimator."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from n3cli.data.estimate import TooSmallError
from n3cli.data.pg_noise import (
    add_pg_noise,
    clipped_moments,
    estimate_pg,
    sample_pg_params,
    synthesize_pg,
    synthesize_pg_batch,
)

XS = np.array([0.05, 0.2, 0.5])


def smooth_scene(n: int = 384) -> np.ndarray:
    """Smooth image covering most of [0, 1] (no texture: only the noise is measured)."""
    y, x = np.mgrid[0:n, 0:n] / n
    return 0.5 + 0.47 * np.sin(2.1 * np.pi * x) * np.cos(1.3 * np.pi * y)


def assert_std_close(est, a: float, b: float, tol: float = 0.15) -> None:
    true = np.sqrt(a * XS + b)
    rel = np.abs(est.std(XS) - true) / true
    assert (rel < tol).all(), (rel, est)


# --- synthesis ---

def test_sampled_parameters_follow_the_spec():
    rng = np.random.default_rng(0)
    ab = np.array([sample_pg_params(rng) for _ in range(4000)])
    la, lr = np.log10(ab[:, 0]), np.log10(ab[:, 1] / ab[:, 0])
    assert la.min() >= -4 and la.max() <= -1 and lr.min() >= -3.6 and lr.max() <= -1.0
    assert abs(la.mean() + 2.5) < 0.05 and abs(lr.mean() + 2.3) < 0.05  # uniform: centred
    assert abs(la.std() - 3 / np.sqrt(12)) < 0.03 and abs(lr.std() - 2.6 / np.sqrt(12)) < 0.03


def test_variance_matches_model_on_flat_unclipped_region():
    rng = np.random.default_rng(1)
    for x, a, b in [(0.4, 1e-2, 1e-4), (0.1, 1e-3, 1e-5)]:
        z = add_pg_noise(np.full((256, 256), x), a, b, rng)
        assert z.min() > 0 and z.max() < 1  # far from the bounds: nothing clipped
        assert abs(z.var() / (a * x + b) - 1) < 0.03
        assert abs(z.mean() - x) < 0.01 * np.sqrt(a * x + b)


def test_clipping_at_0_and_1():
    rng = np.random.default_rng(2)
    lo = add_pg_noise(np.zeros((128, 128)), 0.01, 1e-3, rng)
    hi = add_pg_noise(np.ones((128, 128)), 0.01, 1e-3, rng)
    assert lo.min() == 0 and abs((lo == 0).mean() - 0.5) < 0.02
    assert hi.max() == 1 and abs((hi == 1).mean() - 0.5) < 0.02
    # The clipped mean / std are what the censored-Gaussian formulas say.
    m, s = clipped_moments(np.array(0.0), np.array(np.sqrt(1e-3)))
    assert abs(lo.mean() / m - 1) < 0.03 and abs(lo.std() / s - 1) < 0.03
    assert add_pg_noise(np.zeros((64, 64)), 0.01, 1e-3, rng, clip=False).min() < 0
    # Negative b (pedestal): the variance is clamped at 0, never NaN.
    assert np.isfinite(add_pg_noise(np.linspace(0, 1, 100), 0.01, -1e-3, rng)).all()


def test_numpy_synthesis_is_seeded_and_tone_mapped():
    clean = smooth_scene(64)
    s1, s2 = (synthesize_pg(clean, np.random.default_rng(7)) for _ in range(2))
    np.testing.assert_array_equal(s1.noisy, s2.noisy)
    assert (s1.a, s1.b) == (s2.a, s2.b)
    assert s1.clean.max() <= clean.max() and s1.clean.max() >= 0.25 * clean.max() ** 10
    assert 0 <= s1.noisy.min() and s1.noisy.max() <= 1
    s3 = synthesize_pg(clean, np.random.default_rng(8), tone=False)
    np.testing.assert_array_equal(s3.clean, clean)


def test_torch_batch_shapes_params_and_statistics():
    b_, h = 6, 96
    clean = torch.full((b_, 1, h, h), 0.5)
    out = synthesize_pg_batch(clean, torch.Generator().manual_seed(3), tone_prob=0.0)
    assert out.noisy.shape == clean.shape and out.clean.shape == clean.shape
    assert torch.equal(out.clean, clean)  # tone_prob 0: no tone mapping
    assert out.a.shape == (b_,) and out.b.shape == (b_,)
    assert len(set(out.a.tolist())) == b_  # one draw per sample
    la, lr = torch.log10(out.a), torch.log10(out.b / out.a)
    assert (la >= -4).all() and (la <= -1).all() and (lr >= -3.6 - 1e-4).all() and (lr <= -1 + 1e-4).all()
    assert out.noisy.min() >= 0 and out.noisy.max() <= 1
    # Per-sample variance is a*x + b (x = 0.5, at most ~3 stds from the bounds: tiny clip).
    var = out.noisy.var(dim=(1, 2, 3))
    np.testing.assert_allclose(var.numpy(), (out.a * 0.5 + out.b).numpy(), rtol=0.08)
    again = synthesize_pg_batch(clean, torch.Generator().manual_seed(3), tone_prob=0.0)
    assert torch.equal(out.noisy, again.noisy) and torch.equal(out.a, again.a)
    toned = synthesize_pg_batch(torch.rand(4, 1, 32, 32), torch.Generator().manual_seed(4))
    assert (toned.clean <= 1).all() and toned.clean.mean() < 0.5  # darkened by x**g * s


# --- estimation ---

@pytest.mark.parametrize("a, b, gamma, scale", [
    (1e-2, 1e-4, 1.0, 1.0),      # moderate
    (1e-1, 1e-2, 1.0, 1.0),      # strong: heavy clipping at both ends
    (1e-1, 2.5e-5, 10.0, 0.25),  # strong noise on a very dark image: mostly clipped at 0
    (1e-4, 1e-5, 1.0, 1.0),      # weak, Gaussian part dominant at dark levels
    (3e-3, 3e-7, 2.0, 0.6),      # tiny b
])
def test_estimator_on_smooth_image(a, b, gamma, scale):
    clean = smooth_scene() ** gamma * scale
    est = estimate_pg(add_pg_noise(clean, a, b, np.random.default_rng(5)))
    assert est.a >= 0 and not est.fallback and est.levels >= 10
    assert_std_close(est, a, b)


@pytest.mark.parametrize("name, a, b, gamma, scale", [
    ("01.png", 1e-2, 1e-4, 1.0, 1.0),
    ("05.png", 3e-3, 1e-5, 2.0, 0.8),
    ("08.png", 5e-2, 2e-4, 1.5, 0.5),  # strong noise, clipped shadows
])
def test_estimator_on_set12(shared_file, name, a, b, gamma, scale):
    from n3cli.io import read_image

    x = read_image(shared_file(f"datasets/Set12/{name}")).pixels[..., 0].astype(np.float64)
    est = estimate_pg(add_pg_noise(x ** gamma * scale, a, b, np.random.default_rng(6)))
    assert_std_close(est, a, b)


def test_degenerate_inputs():
    flat = estimate_pg(np.full((64, 64), 0.5))
    assert (flat.a, flat.b, flat.fallback) == (0.0, 0.0, "noise-free")
    # A single level: a and b cannot be separated; constant variance, clip-corrected.
    rng = np.random.default_rng(9)
    for x, a, b in [(0.3, 1e-2, 1e-4), (0.02, 5e-2, 1e-4)]:
        est = estimate_pg(add_pg_noise(np.full((128, 128), x), a, b, rng))
        assert est.fallback == "homoscedastic" and est.a == 0
        assert abs(est.std(x) / np.sqrt(a * x + b) - 1) < 0.1
    with pytest.raises(TooSmallError):
        estimate_pg(np.full((12, 12), 0.5))
    for bad in (np.zeros((64, 64)), np.ones((64, 64))):
        with pytest.raises(ValueError, match="clipped"):
            estimate_pg(bad)
    with pytest.raises(ValueError, match="non-finite"):
        estimate_pg(np.full((64, 64), np.nan))
    with pytest.raises(ValueError, match="2D"):
        estimate_pg(np.zeros((64, 64, 3)))
    # Mostly clipped but not all: an answer, and a finite one.
    z = add_pg_noise(np.zeros((128, 128)), 0.0, 1e-4, rng)
    est = estimate_pg(z)
    assert np.isfinite([est.a, est.b]).all() and abs(est.std(0.0) / 1e-2 - 1) < 0.15


def test_negative_b_is_clamped():
    from n3cli.data.pg_noise import PGEstimate

    est = PGEstimate(a=1e-2, b=-1e-3, levels=10, smooth_fraction=0.5, y_range=(0.2, 0.8))
    assert est.variance(0.0) == 0 and est.std(0.05) == 0 and est.std(0.5) > 0
