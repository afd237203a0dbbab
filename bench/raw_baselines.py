"""Raw (Poisson-Gaussian) baselines on the cases of ``n3 eval --task raw``.

Same images, (a, b) grid, seeds and scoring as :mod:`n3cli.eval.raw` (``raw_evaluate``),
so every row pairs image by image with an ``n3 eval --task raw`` run:

- ``noisy``: the input itself;
- ``GAT+BM3D``: the generalised Anscombe transform (variance ``a*x + b`` -> ~1), BM3D at
  sigma 1, and the closed-form approximation of the exact unbiased inverse (Makitalo &
  Foi, "Optimal inversion of the generalized Anscombe transformation for Poisson-Gaussian
  noise", IEEE TIP 2013). The data are clipped to [0, 1] like a sensor's, which the GAT
  does not model; that is part of what a real pipeline faces.

    python bench/raw_baselines.py --dataset set12 [--limit N] [--noise a,b] [--jobs N] [--json F]

Needs the ``bm3d`` package (``pip install bm3d``, the ``dev`` extra); prints a table. The
network rows come from ``n3 eval --task raw --model n3net-blind|n3net-raw``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from n3cli.app.raw import parse_noise  # noqa: E402
from n3cli.eval.raw import RAW_GRID, raw_evaluate  # noqa: E402

_S = np.sqrt(1.5)


def gat(z: np.ndarray, a: float, b: float) -> np.ndarray:
    """Generalised Anscombe transform of ``z`` (variance ``a*x + b``): unit noise variance.

    In Poisson units (``z / a``, read-noise variance ``b / a^2``) it is
    ``2 sqrt(max(z/a + 3/8 + b/a^2, 0))``.
    """
    return 2.0 * np.sqrt(np.maximum(z / a + 0.375 + b / a**2, 0.0))


def gat_inverse(d: np.ndarray, a: float, b: float) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse (Makitalo & Foi 2013)."""
    d = np.maximum(d, 1e-3)
    x = 0.25 * d**2 + 0.25 * _S / d - 1.375 / d**2 + 0.625 * _S / d**3 - 0.125 - b / a**2
    return np.maximum(x, 0.0) * a


def gat_bm3d(noisy: np.ndarray, a: float, b: float) -> np.ndarray:
    import bm3d

    d = gat(noisy[..., 0].astype(np.float64), a, b)
    return gat_inverse(bm3d.bm3d(d, 1.0), a, b)[..., None]


def noisy_input(z: np.ndarray, a: float, b: float) -> np.ndarray:
    return z


METHODS = {"noisy": noisy_input, "GAT+BM3D": gat_bm3d}


def _part(method: str, args: argparse.Namespace, grid, only: list[int]):
    return raw_evaluate(METHODS[method], method, args.dataset, grid, args.data_dir, args.limit, only=only)


def _evaluate(method: str, args: argparse.Namespace, grid):
    """``raw_evaluate`` in ``args.jobs`` processes over consecutive runs of images, joined
    in order (each image keeps its full-run noise)."""
    from n3cli.data.testsets import dataset_spec, list_images

    n = len(list_images(dataset_spec(args.dataset), args.data_dir)[:args.limit or None])
    parts = [p.tolist() for p in np.array_split(np.arange(n), args.jobs) if len(p)]
    with ProcessPoolExecutor(len(parts)) as pool:
        results = list(pool.map(_part, [method] * len(parts), [args] * len(parts), [grid] * len(parts), parts))
    merged = results[0]
    for j, pair in enumerate(merged.pairs):
        pair.psnr = [s for r in results for s in r.pairs[j].psnr]
        pair.mean_psnr = float(np.mean(pair.psnr))
        pair.noisy_psnr = float(sum(r.pairs[j].noisy_psnr * len(r.images) for r in results) / n)
    merged.images = [name for r in results for name in r.images]
    return merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="set12", choices=["set12", "bsd68"])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--noise", default=None, help="one a,b pair instead of the grid")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=1, help="processes, images dealt round-robin (BM3D is single-threaded)")
    ap.add_argument("--json", type=Path, default=None,
                    help="also write every method's per-pair and per-image PSNRs here (full precision)")
    args = ap.parse_args()
    grid = parse_noise(args.noise)[:1] if args.noise else RAW_GRID
    rows = []
    for name, fn in METHODS.items():
        t0 = time.perf_counter()
        r = (_evaluate(name, args, grid) if args.jobs > 1
             else raw_evaluate(fn, name, args.dataset, grid, args.data_dir, args.limit))
        rows.append((name, r, time.perf_counter() - t0))
    print(f"{args.dataset}, {len(rows[0][1].images)} images (PSNR dB on [0, 1], output clipped)")
    print(f"{'a':>9} {'b':>9} " + " ".join(f"{n:>9}" for n, _, _ in rows))
    for j, (a, b) in enumerate(grid):
        print(f"{a:9.3g} {b:9.3g} " + " ".join(f"{r.pairs[j].mean_psnr:9.3f}" for _, r, _ in rows))
    print(f"{'mean':>19} " + " ".join(f"{r.mean_psnr:9.3f}" for _, r, _ in rows))
    print(f"{'seconds':>19} " + " ".join(f"{t:9.1f}" for _, _, t in rows))
    if args.json:
        receipt = {"dataset": args.dataset, "images": rows[0][1].images,
                   "methods": {name: {"mean_psnr": r.mean_psnr, "seconds": t,
                                      "pairs": [{"a": a, "b": b, "mean_psnr": p.mean_psnr, "psnr": p.psnr}
                                                for (a, b), p in zip(grid, r.pairs)]}
                               for name, r, t in rows}}
        args.json.write_text(json.dumps(receipt, indent=1) + "\n")


if __name__ == "__main__":
    main()
