"""BM3D / CBM3D on the paper protocol's noisy images, for the baselines in docs/RESULTS.md.

The noise is the very stream ``n3 eval --protocol paper`` draws (torch.manual_seed(1234)
restarted for the set, (1, C, H, W) layout, float, unclipped), so every number here is
paired image by image with an ``n3 eval`` run at the same sigma. PSNR is computed on the
float BM3D output, like the networks' (spec section 3). ``--protocol real`` clips and
rounds the noisy image and the output to 8 bits, as ``n3 eval --protocol real`` does.

    python bench/bm3d_baseline.py --dataset set12 --sigma 15 25 50 70
    python bench/bm3d_baseline.py --dataset set12 --sigma 25 --protocol real
    python bench/bm3d_baseline.py --dataset cbsd68 --sigma 50 --limit 20

Needs the ``bm3d`` package (``pip install bm3d``); prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from n3cli.data.testsets import dataset_spec, list_images, load_test_image  # noqa: E402
from n3cli.eval.metrics import psnr  # noqa: E402
from n3cli.data.degrade import to_8bit  # noqa: E402
from n3cli.eval.protocol import PAPER_SEED, paper_noisy  # noqa: E402


def run(dataset: str, sigma: float, limit: int | None, data_dir: Path | None,
        protocol: str = "paper") -> tuple[float, float, int]:
    import bm3d

    real = protocol == "real"

    ts = dataset_spec(dataset, "paper")
    files = list_images(ts, data_dir)
    files = files[:limit] if limit else files
    gen = torch.Generator().manual_seed(PAPER_SEED)
    scores = []
    t0 = time.perf_counter()
    for path in files:
        clean_u8 = load_test_image(path, ts)
        clean = clean_u8.astype(np.float32) / 255.0
        z = paper_noisy(clean_u8, sigma, gen, real).astype(np.float64)
        if z.shape[2] == 3:
            out = bm3d.bm3d_rgb(z, sigma / 255.0)
        else:
            out = bm3d.bm3d(z[..., 0], sigma / 255.0)[..., None]
        out = to_8bit(out) if real else out.astype(np.float32)
        scores.append(psnr(clean, out))
    return float(np.mean(scores)), time.perf_counter() - t0, len(files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="set12", choices=["set12", "bsd68", "cbsd68", "urban100"])
    ap.add_argument("--sigma", type=float, nargs="+", default=[25.0])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--protocol", choices=["paper", "real"], default="paper")
    args = ap.parse_args()
    print(f"{'dataset':8} {'sigma':>5} {'protocol':>8} {'images':>6} {'BM3D PSNR':>9} {'seconds':>8}")
    for s in args.sigma:
        p, sec, n = run(args.dataset, s, args.limit, args.data_dir, args.protocol)
        print(f"{args.dataset:8} {s:5.0f} {args.protocol:>8} {n:6d} {p:9.3f} {sec:8.1f}", flush=True)


if __name__ == "__main__":
    main()
