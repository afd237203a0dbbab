"""A 24 MP camera raw through ``n3 denoise`` (tiled, auto): peak RSS and time per megapixel,
against ``n3net-blind`` on a gray image of the same pixel count.

    python bench/raw_memory.py [--size 6000x4000] [--threads 2] [--model auto]

The mosaic is synthesised (smooth scene, Poisson-Gaussian noise a = 1e-3, b = 1e-5, an
RGGB pattern, 14-bit white level, black 512) and written as a DNG with the project's
writer; each run is a fresh ``python -m n3cli denoise`` process whose peak RSS comes from
``os.wait4``. Issue 11's bar: peak RSS <= 2 GB for a 24 MP raw.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from n3cli.io.dng import write_dng  # noqa: E402
from n3cli.io.raw import RawMetadata, RawMosaic  # noqa: E402


def scene(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    return np.clip(0.45 + 0.25 * np.sin(23 * xx) * np.cos(17 * yy) + 0.15 * np.cos(5 * xx + 3 * yy), 0.02, 0.98)


def synth_dng(path: Path, w: int, h: int) -> None:
    black, white = 512.0, 16383.0
    rng = np.random.default_rng(0)
    x = scene(h, w)
    z = np.clip(x + rng.standard_normal(x.shape, dtype=np.float32) * np.sqrt(1e-3 * x + 1e-5), 0, 1)
    mosaic = np.round(black + z * (white - black)).astype(np.uint16)
    raw = RawMosaic(planes=np.zeros((4, 1, 1), np.float32), cfa="RGGB", black=(black,) * 4, white=white,
                    visible=mosaic, metadata=RawMetadata(make="n3cli", model="synthetic 24 MP"))
    write_dng(path, mosaic, raw)


def run(args: list[str], threads: int) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one ``n3`` process."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "n3cli", *args, "--threads", str(threads)], env=env)
    _, status, usage = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"n3 {' '.join(args)} failed")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="6000x4000", help="W x H of the mosaic")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="auto", help="raw model (auto: n3net-raw, else n3net-blind)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    mp = w * h / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.dng"
        synth_dng(src, w, h)
        t_raw, rss_raw = run(["denoise", str(src), "-o", str(Path(tmp) / "out.dng"), "-m", args.model,
                              "--noise", "1e-3,1e-5", "--tile", "auto"], args.threads)
        from PIL import Image

        gray = Path(tmp) / "gray.png"
        Image.fromarray((scene(h, w) * 255).astype(np.uint8)).save(gray)
        t_gray, rss_gray = run(["denoise", str(gray), "-o", str(Path(tmp) / "out.png"), "-m", "n3net-blind",
                                "--sigma", "10", "--tile", "auto"], args.threads)
    print(f"{'run':34s} {'seconds':>8s} {'s / MP':>7s} {'peak RSS MB':>12s}")
    print(f"{f'raw {w}x{h} DNG ({args.model})':34s} {t_raw:8.1f} {t_raw / mp:7.2f} {rss_raw:12.0f}")
    print(f"{f'n3net-blind, gray {w}x{h} PNG':34s} {t_gray:8.1f} {t_gray / mp:7.2f} {rss_gray:12.0f}")
    print(f"raw / gray time per MP: {t_raw / t_gray:.2f}x")


if __name__ == "__main__":
    main()
