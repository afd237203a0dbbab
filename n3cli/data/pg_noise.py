"""Poisson-Gaussian (heteroscedastic) noise: training synthesis and single-image estimation.

Model, in normalised units (clean y in [0, 1])::

    z = clip(y + N(0, 1) * sqrt(a*y + b), 0, 1)

``a`` is the Poissonian (signal-dependent) part, ``b`` the Gaussian floor. This is the
noise of the raw N3Net model (spec section 5), whose network takes (a, b) as input maps.

Synthesis (:func:`synthesize_pg`, :func:`synthesize_pg_batch`) follows the paper's recipe:
a gray image is tone-mapped to ``x**g * s``, g ~ U(1.25, 10), s ~ U(0.25, 1) (dark,
raw-like), then log10 a ~ U(-4, -1), log10 b = log10 a - 2.3 + U(-1.3, 1.3).

Estimation (:func:`estimate_pg`) follows Foi, Trimeche, Katkovnik & Egiazarian,
"Practical Poissonian-Gaussian noise modeling and fitting for single-image raw-data"
(IEEE TIP 17(10), 2008):

1. one level of the Haar transform on 2x2 blocks: the diagonal detail
   ``(z1 - z2 - z3 + z4) / 2`` (unit noise gain, blind to linear shading) carries the
   noise, the block means the signal;
2. smooth blocks are kept: the spread of the neighbours' horizontal, vertical and
   diagonal details must be consistent with the noise variance the previous fit
   predicts at that level (Foi segments by edge detection and erosion instead);
3. the smooth blocks are split into level sets by their neighbourhood mean; each level
   set gives the mean of its block means and a robust std of its diagonal details,
   measured on its least textured half;
4. ``sigma^2(y) = a*y + b`` is fitted to the level sets by robust least squares in which
   each level set is compared with the *clipped* model: the mean and std of
   ``clip(N(y, a*y + b), 0, 1)`` (a censored Gaussian, closed form), as in Foi's
   likelihood. So level sets near 0 and 1, where clipping shrinks the std and pulls the
   mean inwards, inform the fit instead of biasing it. Texture can only add to a level
   set's std, so residuals above the model weigh less than those below; 2-3 passes of
   (2)-(4), each with the previous fit's predictions.

Every neighbourhood statistic leaves the block itself out, so whether a block is
selected, and in which level set, never depends on its own noise: its mean and detail
stay unbiased however strict the selection (an erosion of the smooth mask would break
that: it reads the block through its neighbours' tests, and measured a few % low).

Limits: texture, grain or 8-bit steps of the image that are finer than 2 pixels and
weaker than the noise pass as noise; the model is extrapolated beyond the levels the
image holds (``PGEstimate.y_range``).

Negative ``b`` (a pedestal, allowed by Foi) is returned as fitted; wherever a model
variance is needed it is clamped to ``max(a*y + b, 0)`` (:meth:`PGEstimate.variance`).
``bench/pg_estimate.py`` measures the accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from n3cli.data.estimate import TooSmallError

if TYPE_CHECKING:
    import torch

GAMMA_RANGE = (1.25, 10.0)
SCALE_RANGE = (0.25, 1.0)
LOG10_A_RANGE = (-4.0, -1.0)
LOG10_B_OFFSET, LOG10_B_SPREAD = -2.3, 1.3

_MAD_TO_STD = 0.6744897501960817  # median(|N(0,1)|)
MIN_BLOCKS = 256  # 2x2 blocks; below this no estimate (TooSmallError)
MIN_PER_LEVEL = 200  # blocks measured per level set: its std is then good to ~5 %
MAX_LEVELS = 64
WINDOW = 5  # neighbourhood (in blocks) for the smoothness test and the level-set means
SMOOTH_RATIO = 1.3  # smooth: neighbours' detail energy <= this x the predicted variance
MIN_SMOOTH = 0.2  # ... or among the least textured 20 % of blocks, whichever is more
KEEP = 0.5  # share of each level set measured: its least textured half
ASYM = 3.0  # residuals above the model count this much less (texture only adds)
DEAD = 0.5  # ... once above the model by more than this many sampling errors
GRID_STEPS = 12  # per axis, for the fit's starting point
VAR_FLOOR = 1e-12  # the model variance is clamped here (b < 0 below y = -b/a)


class PGSample(NamedTuple):
    """A synthesised pair: ``noisy``, tone-mapped ``clean`` target, and the noise (a, b)."""

    noisy: np.ndarray | torch.Tensor
    clean: np.ndarray | torch.Tensor
    a: float | torch.Tensor
    b: float | torch.Tensor


# --- synthesis --------------------------------------------------------------------------

def sample_pg_params(rng: np.random.Generator) -> tuple[float, float]:
    """(a, b) from the paper's distribution: log10 a ~ U(-4, -1), log10 b = log10 a - 2.3 + U(-1.3, 1.3)."""
    la = rng.uniform(*LOG10_A_RANGE)
    lb = la + LOG10_B_OFFSET + rng.uniform(-LOG10_B_SPREAD, LOG10_B_SPREAD)
    return 10.0 ** la, 10.0 ** lb


def sample_tone_params(rng: np.random.Generator) -> tuple[float, float]:
    """(gamma, scale) of the paper's tone mapping ``x**gamma * scale``."""
    return rng.uniform(*GAMMA_RANGE), rng.uniform(*SCALE_RANGE)


def add_pg_noise(x: np.ndarray, a: float, b: float, rng: np.random.Generator,
                 clip: bool = True) -> np.ndarray:
    """``x + N(0, 1) * sqrt(a*x + b)``, clipped to [0, 1] unless ``clip`` is False.

    The variance is clamped at 0, so a negative ``b`` (or x < 0) never yields NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    z = x + rng.standard_normal(x.shape) * np.sqrt(np.maximum(a * x + b, 0.0))
    return np.clip(z, 0.0, 1.0) if clip else z


def synthesize_pg(clean: np.ndarray, rng: np.random.Generator, *, tone: bool = True) -> PGSample:
    """The paper's raw training pair from a gray image in [0, 1] (numpy, one image)."""
    x = np.clip(np.asarray(clean, dtype=np.float64), 0.0, 1.0)
    if tone:
        g, s = sample_tone_params(rng)
        x = x ** g * s
    a, b = sample_pg_params(rng)
    return PGSample(add_pg_noise(x, a, b, rng), x, a, b)


def synthesize_pg_batch(clean: torch.Tensor, gen: torch.Generator, *,
                        tone_prob: float = 1.0, focus: tuple[float, float] | None = None,
                        focus_prob: float = 0.0) -> PGSample:
    """Batched :func:`synthesize_pg` for training: ``clean`` (B, 1, H, W) in [0, 1].

    Per-sample gamma / scale (each sample with probability ``tone_prob``: 1 = the paper's,
    0 = none; the others keep the image's own levels) and (a, b), ``log10 a`` drawn with
    probability ``focus_prob`` from U(*focus) instead of the paper's range; returns ``PGSample(noisy, clean,
    a, b)`` with the tone-mapped target as ``clean`` and a, b as (B,) tensors, all on
    ``clean``'s device, with no host syncs. Noisy output is clipped (raw files are).
    """
    import torch

    bsz, dev, dt = clean.shape[0], clean.device, clean.dtype
    u = torch.rand(bsz, 4, generator=gen, device=dev, dtype=torch.float64)
    view = (bsz,) + (1,) * (clean.dim() - 1)
    x = clean.clamp(0.0, 1.0)
    if tone_prob > 0.0:
        g = GAMMA_RANGE[0] + (GAMMA_RANGE[1] - GAMMA_RANGE[0]) * u[:, 0]
        s = SCALE_RANGE[0] + (SCALE_RANGE[1] - SCALE_RANGE[0]) * u[:, 1]
        if tone_prob < 1.0:  # untoned: gamma 1, scale 1 (drawn after u: at 1 the stream is the paper's)
            keep = torch.rand(bsz, generator=gen, device=dev, dtype=torch.float64) >= tone_prob
            g, s = g.masked_fill(keep, 1.0), s.masked_fill(keep, 1.0)
        x = x.pow(g.to(dt).view(view)) * s.to(dt).view(view)
    # float64 for the parameters: b reaches 1e-9, harmless in float32 but kept exact.
    la = LOG10_A_RANGE[0] + (LOG10_A_RANGE[1] - LOG10_A_RANGE[0]) * u[:, 2]
    if focus is not None and focus_prob > 0.0:  # extra draws only then: the stream stays the paper's
        pick = torch.rand(bsz, generator=gen, device=dev, dtype=torch.float64) < focus_prob
        la = torch.where(pick, focus[0] + (focus[1] - focus[0]) * u[:, 2], la)
    lb = la + LOG10_B_OFFSET + LOG10_B_SPREAD * (2.0 * u[:, 3] - 1.0)
    a, b = 10.0 ** la, 10.0 ** lb
    var = (a.to(dt).view(view) * x + b.to(dt).view(view)).clamp_min_(0.0)
    noise = torch.randn(x.shape, generator=gen, device=dev, dtype=dt)
    noisy = (x + noise * var.sqrt()).clamp_(0.0, 1.0)
    return PGSample(noisy, x, a.to(dt), b.to(dt))


# --- estimation -------------------------------------------------------------------------

@dataclass(frozen=True)
class PGEstimate:
    """Fitted noise model ``sigma^2(y) = max(a*y + b, 0)`` (a >= 0; b may be negative).

    ``levels``: level sets in the fit; ``smooth_fraction``: share of 2x2 blocks kept as
    smooth; ``y_range``: (lowest, highest) observed mean of the level sets — outside it
    the model is extrapolated; ``fallback``: "" for a full fit, else what was done instead
    ("homoscedastic": one level only, a = 0; "noise-free": no detail at all, a = b = 0).
    """

    a: float
    b: float
    levels: int
    smooth_fraction: float
    y_range: tuple[float, float]
    fallback: str = ""

    def variance(self, y: np.ndarray | float) -> np.ndarray:
        return np.maximum(self.a * np.asarray(y, dtype=np.float64) + self.b, 0.0)

    def std(self, y: np.ndarray | float) -> np.ndarray:
        return np.sqrt(self.variance(y))


def clipped_moments(mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``clip(N(mu, sigma^2), 0, 1)`` (censored Gaussian), elementwise."""
    from scipy.special import ndtr

    s = np.maximum(sigma, 1e-12)
    lo, hi = -mu / s, (1.0 - mu) / s
    plo, phi_ = ndtr(lo), ndtr(hi)
    dlo = np.exp(-0.5 * lo * lo) / math.sqrt(2 * math.pi)
    dhi = np.exp(-0.5 * hi * hi) / math.sqrt(2 * math.pi)
    inner = phi_ - plo
    # Centred on mu, so that small variances do not cancel against mu^2.
    d1 = s * (dlo - dhi) + (1.0 - mu) * (1.0 - phi_) - mu * plo  # E[Y] - mu
    d2 = (s * s * (inner + lo * dlo - hi * dhi)
          + (1.0 - mu) ** 2 * (1.0 - phi_) + mu * mu * plo)  # E[(Y - mu)^2]
    return mu + d1, np.sqrt(np.maximum(d2 - d1 * d1, 0.0))


def _haar(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2x2 blocks -> (means, diagonal details, stacked horizontal/vertical/diagonal details).

    The details are orthonormal (unit noise gain, mutually uncorrelated); the diagonal one
    vanishes on any linear shading, so it is the noise measure.
    """
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = plane[:h, :w]
    z1, z2, z3, z4 = p[0::2, 0::2], p[0::2, 1::2], p[1::2, 0::2], p[1::2, 1::2]
    d = (z1 - z2 - z3 + z4) * 0.5
    hd, vd = (z1 + z2 - z3 - z4) * 0.5, (z1 - z2 + z3 - z4) * 0.5
    return (z1 + z2 + z3 + z4) * 0.25, d, np.stack([hd, vd, d])


def _neighbours_mean(x: np.ndarray) -> np.ndarray:
    """Mean over the WINDOW x WINDOW neighbourhood of each block, the block itself left out."""
    from scipy.ndimage import uniform_filter

    k2 = WINDOW * WINDOW
    return (uniform_filter(x, WINDOW, mode="reflect") * k2 - x) / (k2 - 1)


def _robust_std(d: np.ndarray) -> float:
    """Std of ``d`` after dropping outliers (texture) beyond 5 MAD-stds.

    Not the MAD itself: clipped noise is far from Gaussian and its MAD/std ratio depends
    on how much is clipped, while the clipped model predicts the std. The cut is wide
    enough to keep virtually all clipped noise.
    """
    s0 = float(np.median(np.abs(d))) / _MAD_TO_STD
    if s0 > 0:
        d = d[np.abs(d) <= 5.0 * s0]
    return float(np.sqrt(np.mean(d * d))) if d.size else 0.0


def _level_sets(level: np.ndarray, mean: np.ndarray, diag: np.ndarray, texture: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per level set (equal-count bins of ``level``): mean of block means, robust std of
    the diagonal details, number of blocks.

    Within each level set only the KEEP share of blocks with the least neighbourhood
    ``texture`` is measured: texture left after the smoothness test only adds to the
    std, and the leave-one-out ``texture`` cannot bias the noise of the block itself.
    """
    n_levels = int(np.clip(level.size * KEEP // MIN_PER_LEVEL, 1, MAX_LEVELS))
    order = np.argsort(level, kind="stable")
    ym, sd, cnt = [], [], []
    for idx in np.array_split(order, n_levels):
        idx = idx[np.argsort(texture[idx], kind="stable")[:max(1, int(idx.size * KEEP))]]
        ym.append(float(mean[idx].mean()))
        sd.append(_robust_std(diag[idx]))
        cnt.append(idx.size)
    return np.array(ym), np.array(sd), np.array(cnt, dtype=np.float64)


_GRID = np.linspace(-0.5, 1.5, 2001)  # clean levels for the clipped-model tables


def _model_curve(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """(observed mean, observed std) of the clipped model along ``_GRID``."""
    m, s = clipped_moments(_GRID, np.sqrt(np.maximum(a * _GRID + b, VAR_FLOOR)))
    # Monotone for np.interp (flat where everything is clipped).
    return np.maximum.accumulate(m) + _GRID * 1e-12, s


def _fit(ym: np.ndarray, sd: np.ndarray, cnt: np.ndarray,
         start: tuple[float, float] | None = None) -> tuple[float, float]:
    """Robust fit of (a, b) to level sets, through the clipped model (see module doc)."""
    from scipy.optimize import least_squares

    ok = (sd > 0) & (ym > 1e-4) & (ym < 1 - 1e-4)
    ym, sd, cnt = ym[ok], sd[ok], cnt[ok]
    if ym.size < 2:
        raise ValueError("fewer than two usable level sets")
    # Parameterise by the variances at two anchor levels: both positive (logs) and
    # comparable in scale, unlike (a, b), which differ by orders of magnitude.
    y0, y1 = float(ym.min()), float(ym.max())
    # A span well below the noise std is one level seen through noise: the slope is
    # then unidentifiable (a flat image), and the caller reports a constant variance.
    if y1 - y0 < 0.25 * float(np.median(sd)) or y1 - y0 < 1e-6:
        raise ValueError("level sets span too narrow a range")

    def ab(q: np.ndarray) -> tuple[float, float]:
        v0, dv = math.exp(q[0]), math.exp(q[1])
        a = dv / (y1 - y0)
        return a, v0 - a * y0

    def resid(q: np.ndarray) -> np.ndarray:
        m, s = _model_curve(*ab(q))
        pred = np.interp(np.interp(ym, m, _GRID), _GRID, s)
        # Sampling error of a std from n values, plus 3 % for texture left in the sets.
        err = pred * np.sqrt(0.5 / cnt + 0.03 ** 2) + 1e-9
        r = (sd - pred) / err
        # Texture only adds to a level set's std: beyond the sampling error, a level set
        # above the model is more likely textured than one below is likely short of noise.
        return np.where(r > DEAD, DEAD + (r - DEAD) / ASYM, r)

    # Start from the best point of a coarse grid: the clipped model makes the cost
    # non-convex, and a start far off (e.g. a line fitted ignoring clipping) can end
    # in a wrong local minimum.
    lo, hi = 2 * math.log(0.2 * float(sd.min())), 2 * math.log(5.0 * float(sd.max()))
    if start is not None and start[0] > 0 and start[0] * y0 + start[1] > 0:
        # Later passes: the previous fit, or nearby, is a good start.
        q = np.array([math.log(start[0] * y0 + start[1]), math.log(start[0] * (y1 - y0))])
        cands = [q + np.array([u, v]) for u in (-1.0, 0.0, 1.0) for v in (-1.0, 0.0, 1.0)]
    else:
        axis = np.linspace(lo, hi, GRID_STEPS)
        cands = [np.array([u, v]) for u in axis for v in axis]
    cost = [float(np.sum(2.0 * (np.sqrt(1.0 + (resid(c) / 2.0) ** 2) - 1.0))) for c in cands]
    q0 = cands[int(np.argmin(cost))]
    res = least_squares(resid, q0, loss="soft_l1", f_scale=2.0, method="trf",
                        bounds=([-60.0, -60.0], [5.0, 5.0]))
    return ab(res.x)


def _fit_constant(ym: np.ndarray, sd: np.ndarray, cnt: np.ndarray) -> float:
    """Constant variance b (a = 0) through the clipped model; 0 when there is no noise."""
    from scipy.optimize import minimize_scalar

    ok = (sd > 0) & (ym > 0) & (ym < 1)
    if not ok.any():
        return 0.0
    ym, sd, w = ym[ok], sd[ok], cnt[ok]
    v_raw = float(np.sum(w * sd * sd) / w.sum())

    def cost(logv: float) -> float:
        m, s = _model_curve(0.0, math.exp(logv))
        pred = np.interp(np.interp(ym, m, _GRID), _GRID, s)
        return float(np.sum(w * (sd - pred) ** 2))

    # Clipping only shrinks the std: the answer lies between the raw variance and 100x it.
    res = minimize_scalar(cost, bounds=(math.log(v_raw), math.log(v_raw) + math.log(100.0)),
                          method="bounded")
    return math.exp(res.x)


def estimate_pg(plane: np.ndarray, passes: int = 2) -> PGEstimate:
    """Poisson-Gaussian parameters (a, b) of one noisy 2D plane, normalised to [0, 1].

    See the module docstring for the method (Foi et al. 2008). The plane may be clipped to
    [0, 1]; values outside are accepted (unclipped data). Raises :class:`TooSmallError`
    (a ValueError) below ``MIN_BLOCKS`` 2x2 blocks, and ValueError when nothing is
    measurable (every sample clipped to the same bound, or non-finite values).
    Falls back to a homoscedastic fit (a = 0) when the plane holds a single level, and
    returns a = b = 0 when it holds no noise at all.
    """
    z = np.asarray(plane, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"expected a 2D plane, got shape {z.shape}")
    if (z.shape[0] // 2) * (z.shape[1] // 2) < MIN_BLOCKS:
        raise TooSmallError(f"{z.shape[1]}x{z.shape[0]} is too small for a noise-model estimate")
    if not np.isfinite(z).all():
        raise ValueError("plane holds non-finite values")
    if (z <= 0).all() or (z >= 1).all():
        raise ValueError("every sample is clipped: the noise cannot be measured")
    mean, diag, detail = _haar(z)
    if not diag.any():
        return PGEstimate(0.0, 0.0, 1, 1.0, (float(mean.min()), float(mean.max())), "noise-free")
    # Leave-one-out neighbourhood statistics (see the module docstring).
    level = _neighbours_mean(mean)
    # Texture: the neighbours' spread of their details around the local mean (a linear
    # shading shifts the mean of the gradient coefficients, not their spread); noise
    # alone gives its variance.
    texture = sum(_neighbours_mean(d * d) - _neighbours_mean(d) ** 2 for d in detail) / len(detail)
    texture *= (WINDOW * WINDOW - 1) / (WINDOW * WINDOW - 2)  # one dof spent on the mean
    flat_mean, flat_diag = mean.ravel(), diag.ravel()

    smooth = np.ones(mean.shape, dtype=bool)
    a = b = None
    for it in range(passes + 1):
        if it > 0:
            # Smooth: no more detail around the block than the noise would give.
            mo, so = _model_curve(a, b)
            pred = np.interp(np.interp(level, mo, _GRID), _GRID, so) ** 2
            ratio = texture / (pred + 1e-20)
            # At least MIN_SMOOTH of the blocks, the least textured: a poor previous fit
            # (e.g. a dark image, mostly clipped) must not empty the selection.
            cut = max(SMOOTH_RATIO, float(np.quantile(ratio, MIN_SMOOTH)))
            smooth = ratio <= cut
            if smooth.sum() < 4 * MIN_PER_LEVEL:  # too little: keep the previous fit
                break
        sel = smooth.ravel()
        ym, sd, cnt = _level_sets(level.ravel()[sel], flat_mean[sel], flat_diag[sel],
                                  texture.ravel()[sel])
        try:
            a, b = _fit(ym, sd, cnt, None if a is None else (a, b))
            fallback = ""
        except ValueError:
            if it > 0:
                break
            # One level only: a and b cannot be told apart; report a constant variance.
            a, b, fallback = 0.0, _fit_constant(ym, sd, cnt), "homoscedastic"
        n_levels = int(ym.size)
        span = (float(ym.min()), float(ym.max()))
        frac = float(sel.mean())
        if fallback:
            break
    return PGEstimate(float(a), float(b), n_levels, frac, span, fallback)
