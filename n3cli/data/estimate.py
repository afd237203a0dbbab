"""Noise-level estimation for ``--sigma auto`` (additive white Gaussian noise).

Two estimators, both in 8-bit units (sigma 25 means 25/255 on a [0, 1] image):

- :func:`sigma_weak_texture`: Liu, Tanaka & Okutomi, "Single-image noise level
  estimation for blind denoising" (IEEE TIP 2013). Patches whose gradient energy is
  consistent with noise alone ("weak texture") are selected iteratively; the smallest
  eigenvalue of their covariance is the noise variance. Texture barely biases it.
- :func:`sigma_mad`: Donoho's wavelet MAD on the finest diagonal db2 sub-band (as in
  scikit-image's ``estimate_sigma``): the fallback for images too small for patches.
  Overestimates on textured images.

Real noisy files are clipped to [0, 1] (and quantised), which removes noise near black
and white; :func:`estimate_sigma` corrects for that when the noise is strong (see
:func:`_clip_corrected`). ``bench/sigma_estimate.py`` measures the accuracy.
"""

from __future__ import annotations

import math

import numpy as np

# db2 decomposition high-pass filter (PyWavelets' dec_hi for 'db2').
_DB2_HI = np.array([-0.48296291314469025, 0.836516303737469,
                    -0.22414386804185735, -0.12940952255092145])
_MAD_TO_STD = 0.6744897501960817  # median(|N(0,1)|)
PATCH = 7
MAX_PATCHES = 120_000  # subsample bigger images: the estimate is stable well before
MIN_PIXELS = 16  # below this there is nothing to measure


class TooSmallError(ValueError):
    """The image has too few pixels for any estimate."""


def check_sigma_value(sigma: float, label: str = "sigma") -> float:
    """A noise level given by the user: a std in 8-bit units, 0 < sigma <= 255 (NaN is not)."""
    from n3cli.errors import UsageError

    if not 0 < sigma <= 255:
        raise UsageError(f"{label} {sigma:g} is out of range", "it is a std in 8-bit units: 0 < sigma <= 255")
    return sigma


def _as_hwc(image: np.ndarray) -> np.ndarray:
    # float32 stays float32: a 100 MP photo in float64 would cost 2.4 GB for nothing;
    # the patch matrices, which are small, are promoted instead.
    a = np.asarray(image)
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    return a[..., None] if a.ndim == 2 else a


def sigma_mad(image: np.ndarray) -> float:
    """Wavelet-MAD noise std (8-bit units), averaged over channels."""
    a = _as_hwc(image)
    if a.shape[0] < 4 or a.shape[1] < 4:
        raise TooSmallError(f"{a.shape[1]}x{a.shape[0]} is too small for a wavelet estimate")
    out = []
    for c in range(a.shape[2]):
        x = a[..., c]
        # Separable high-pass along rows then columns, keeping every second sample.
        hr = sum(_DB2_HI[k] * x[:, k:x.shape[1] - 3 + k] for k in range(4))[:, ::2]
        hh = sum(_DB2_HI[k] * hr[k:hr.shape[0] - 3 + k, :] for k in range(4))[::2, :]
        out.append(np.median(np.abs(hh)) / _MAD_TO_STD)
    return float(np.mean(out)) * 255.0


def _patches(a: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(N x d patch matrix, N patch means, stride) with a stride keeping N <= MAX_PATCHES."""
    h, w, c = a.shape
    n_full = (h - patch + 1) * (w - patch + 1)
    stride = max(1, int(math.ceil(math.sqrt(n_full / MAX_PATCHES))))
    win = np.lib.stride_tricks.sliding_window_view(a, (patch, patch), axis=(0, 1))
    win = win[::stride, ::stride]  # (ny, nx, c, patch, patch)
    x = np.ascontiguousarray(win.reshape(-1, c * patch * patch), dtype=np.float64)
    return x, x.mean(axis=1), stride


def _gradient_operator(patch: int) -> np.ndarray:
    """Matrix D with ||D x||^2 = the patch's horizontal + vertical gradient energy."""
    basis = np.eye(patch * patch).reshape(patch * patch, patch, patch)
    dh = (basis[:, :, 2:] - basis[:, :, :-2]) / 2
    dv = (basis[:, 2:, :] - basis[:, :-2, :]) / 2
    return np.vstack([dh.reshape(patch * patch, -1).T, dv.reshape(patch * patch, -1).T])


def _min_eig(x: np.ndarray, stride: int = 1) -> float:
    """Smallest eigenvalue of the patch covariance, corrected for its finite-sample bias.

    For white noise the smallest sample eigenvalue sits at the lower Marchenko-Pastur edge,
    sigma^2 (1 - sqrt(d / n))^2, where n counts independent pixels: a patch taken every
    ``stride`` pixels brings about min(stride^2, d) new ones. Without this, a 96 x 96
    image reads about 8 % low.
    """
    xc = x - x.mean(axis=0, keepdims=True)
    # einsum, not BLAS: some OpenBLAS builds run this tall float64 product 50x slower.
    lam = float(np.linalg.eigvalsh(np.einsum("ni,nj->ij", xc, xc) / (len(x) - 1))[0])
    d = x.shape[1]
    n = len(x) * min(stride * stride, d)
    return lam / (1.0 - math.sqrt(d / n)) ** 2 if n > 4 * d else lam


def _weak_texture_variance(x: np.ndarray, patch: int, stride: int = 1,
                           iterations: int = 3) -> tuple[float, np.ndarray]:
    """Liu et al.'s iteration on an N x patch^2 matrix of one channel's patches.

    A noise-only patch's gradient energy follows a (scaled) Gamma law; patches above its
    1 - 1e-6 quantile for the current variance estimate are texture and are dropped.
    Returns the noise variance and the indices of the patches kept.
    """
    from scipy.stats import gamma

    d = _gradient_operator(patch)
    dd = d.T @ d
    rank, trace = np.linalg.matrix_rank(dd), np.trace(dd)
    tau0 = gamma.ppf(1 - 1e-6, rank / 2, scale=2 * trace / rank)
    # Gradient energy only ranks patches: float32 (and its fast BLAS) is plenty.
    g = x.astype(np.float32) @ d.T.astype(np.float32)
    energy = np.einsum("ij,ij->i", g, g)
    idx = np.arange(len(x))
    var = _min_eig(x, stride)
    for _ in range(1, iterations):
        keep = energy < var * tau0
        if keep.sum() < x.shape[1] * 2:
            break
        x, energy, idx = x[keep], energy[keep], idx[keep]
        var = _min_eig(x, stride)
    return max(var, 0.0), idx


def sigma_weak_texture(image: np.ndarray, patch: int = PATCH) -> float:
    """Weak-texture-patch noise std (8-bit units), averaged over channels."""
    a = _as_hwc(image)
    h, w, c = a.shape
    if (h - patch + 1) * (w - patch + 1) < 4 * patch * patch:
        raise TooSmallError(f"{w}x{h} is too small for a patch estimate")
    out = []
    for ch in range(c):
        x, _, stride = _patches(a[..., ch:ch + 1], patch)
        out.append(math.sqrt(_weak_texture_variance(x, patch, stride)[0]))
    return float(np.mean(out)) * 255.0


def _clipped_moments(mu: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of N(mu, sigma) clipped to [0, 1] (closed form, censored Gaussian)."""
    from scipy.special import ndtr

    s = max(sigma, 1e-9)
    a, b = (0.0 - mu) / s, (1.0 - mu) / s
    pa, pb = ndtr(a), ndtr(b)
    phia, phib = np.exp(-0.5 * a * a), np.exp(-0.5 * b * b)
    phia, phib = phia / math.sqrt(2 * math.pi), phib / math.sqrt(2 * math.pi)
    # E[Y] and E[Y^2] of Y = clip(X, 0, 1): inner part + mass at 1 (mass at 0 adds 0).
    z = pb - pa
    m1 = mu * z + s * (phia - phib) + (1 - pb)
    m2 = (mu * mu + s * s) * z + 2 * mu * s * (phia - phib) + s * s * (a * phia - b * phib) + (1 - pb)
    return m1, np.sqrt(np.maximum(m2 - m1 * m1, 0.0))


def _predicted_clipped_std(observed_means: np.ndarray, sigma: float) -> float:
    """RMS std a clipped N(mu, sigma) would show at patches with these *observed* means.

    Observed means are themselves pulled towards mid-gray by clipping, so each is mapped
    through the (monotone) table mu -> (clipped mean, clipped std).
    """
    grid = np.linspace(-1.5, 2.5, 801)
    cmean, cstd = _clipped_moments(grid, sigma)
    return float(np.sqrt(np.mean(np.interp(observed_means, cmean, cstd) ** 2)))


def _clip_corrected(a: np.ndarray, sigma_obs: float) -> float:
    """Noise std before clipping, from patches with mid-gray means.

    Clipping shrinks the noise, least near mid-gray. We estimate on patches whose mean is
    in [0.3, 0.7], remember which patches the weak-texture selection kept, and find the
    sigma whose clipped Gaussian would show that std at those patches' means.
    """
    variances, mus = [], []
    for ch in range(a.shape[2]):
        x, means, stride = _patches(a[..., ch:ch + 1], PATCH)
        sel = np.flatnonzero((means > 0.3) & (means < 0.7))
        if len(sel) < 4 * x.shape[1]:
            continue
        var, kept = _weak_texture_variance(x[sel], PATCH, stride)
        variances.append(var)
        kept_means = means[sel][kept]
        mus.append(kept_means[:: max(1, len(kept_means) // 4000)])
    if not variances:
        return sigma_obs * 255.0
    s_mid = math.sqrt(float(np.mean(variances)))
    mus = np.concatenate(mus)
    lo_s, hi_s = s_mid, 3.0 * s_mid + 1e-6
    for _ in range(40):  # bisection: the clipped std grows with sigma
        mid = 0.5 * (lo_s + hi_s)
        if _predicted_clipped_std(mus, mid) < s_mid:
            lo_s = mid
        else:
            hi_s = mid
    return 0.5 * (lo_s + hi_s) * 255.0


def estimate_sigma(image: np.ndarray, clipped: bool | None = None) -> float:
    """Noise std of ``image`` (H x W [x C], float in [0, 1]) in 8-bit units.

    ``clipped``: whether the noisy image was clipped to [0, 1]; None decides from the data
    (a fair share of samples at exactly 0 or 1). Raises :class:`TooSmallError` for images
    with fewer than ``MIN_PIXELS`` pixels.
    """
    a = _as_hwc(image)
    if a.shape[0] * a.shape[1] < MIN_PIXELS:
        raise TooSmallError(f"{a.shape[1]}x{a.shape[0]} is too small to estimate the noise level")
    try:
        s = sigma_weak_texture(a)
    except TooSmallError:
        try:
            return sigma_mad(a)
        except TooSmallError:
            d = np.diff(a, axis=1 if a.shape[1] > a.shape[0] else 0)
            return float(np.median(np.abs(d)) / _MAD_TO_STD / math.sqrt(2) * 255.0)
    if clipped is None:
        # Clipped files hold many samples at exactly 0 or 1 and none beyond.
        inside = a.min() >= 0.0 and a.max() <= 1.0
        clipped = inside and float(np.mean((a == 0.0) | (a == 1.0))) > 0.005
    if clipped and s > 10.0:
        return _clip_corrected(a, s / 255.0)
    return s
