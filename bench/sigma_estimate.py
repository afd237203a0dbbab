"""Accuracy of ``--sigma auto`` (n3cli.data.estimate) on Set12.

For each true sigma, Gaussian noise (fixed seed) is added to each Set12 image in float,
either left unclipped, or clipped to [0, 1] and rounded to 8 bits like a real noisy file.
Reports the mean estimate and the mean / worst relative error over the 12 images, for
n3's estimator (``estimate_sigma``), its parts, and scikit-image's wavelet estimate.

    python bench/sigma_estimate.py [--shared ../shared] [--markdown]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from n3cli.data.estimate import estimate_sigma, sigma_mad, sigma_weak_texture
from n3cli.io import read_image

SIGMAS = (5, 15, 25, 50, 75)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    folder = args.shared / "datasets" / "Set12"
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"Set12 not found under {folder}")
    clean = [read_image(f).pixels.astype(np.float64) for f in files]
    estimators = {"n3 auto": lambda x, clip: estimate_sigma(x, clipped=None),
                  "weak-texture": lambda x, clip: sigma_weak_texture(x),
                  "wavelet MAD": lambda x, clip: sigma_mad(x)}
    try:
        from skimage.restoration import estimate_sigma as sk_est
        estimators["skimage"] = lambda x, clip: float(sk_est(x[..., 0])) * 255.0
    except ImportError:
        pass
    rng = np.random.default_rng(args.seed)
    rows = []
    t0 = time.perf_counter()
    for sigma in SIGMAS:
        noisy = {"unclipped": [], "clipped 8-bit": []}
        for x in clean:
            y = x + rng.standard_normal(x.shape) * sigma / 255.0
            noisy["unclipped"].append(y)
            noisy["clipped 8-bit"].append(np.round(np.clip(y, 0, 1) * 255.0) / 255.0)
        for kind, ys in noisy.items():
            for name, fn in estimators.items():
                est = np.array([fn(y, kind != "unclipped") for y in ys])
                rel = np.abs(est - sigma) / sigma
                rows.append((sigma, kind, name, est.mean(), rel.mean() * 100, rel.max() * 100))
    secs = time.perf_counter() - t0
    n_calls = len(SIGMAS) * 2 * len(clean)
    if args.markdown:
        print("| sigma | noise | estimator | mean estimate | mean error % | worst error % |")
        print("|---:|---|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.1f} | {r[5]:.1f} |")
    else:
        for r in rows:
            print(f"sigma {r[0]:3d}  {r[1]:14s} {r[2]:12s} mean {r[3]:6.2f}  err {r[4]:5.1f}%  worst {r[5]:5.1f}%")
    print(f"\n{len(files)} Set12 images, seed {args.seed}; {secs:.1f} s for {n_calls} noisy images "
          f"x {len(estimators)} estimators")


if __name__ == "__main__":
    main()
