"""Tiled inference: tile size vs time, peak RSS and difference to whole-image output.

    python bench/tiling.py [--device cpu] [--size 1024] [--tiles 0,256,512] [--modes exact,blend]
    python bench/tiling.py --big 4000x3000     # one 12-MP exact run with tile auto: peak RSS

Random-weight paper-config N3Net on a smooth synthetic gray image with noise. Each case
runs in a subprocess on the CPU (peak RSS = ru_maxrss of that process); the whole-image
output is computed once and saved for the comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import _common  # noqa: F401
import numpy as np
import torch

from _common import machine, rss_mb
from n3cli.engine import memory, runner
from n3cli.models.registry import descriptor_for, PAPER_GRAY
from n3cli.models import N3Net


def image(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    clean = 0.5 + 0.3 * np.sin(20 * xx) * np.cos(14 * yy)
    return (clean + rng.normal(0, 25 / 255, (h, w)))[..., None].astype(np.float32)


def case(h: int, w: int, tile: str, mode: str, device: str, out: str | None, max_memory: str | None) -> dict:
    torch.manual_seed(0)
    net = N3Net(PAPER_GRAY)
    desc = descriptor_for(PAPER_GRAY, sigma=25.0)
    img = image(h, w)
    dev = torch.device(device)
    base = rss_mb()
    t0 = time.perf_counter()
    tiles = []
    y = runner.restore_image(net, desc, img, runner.sigma_conditions(25.0), dev,
                             tile=int(tile) if tile != "auto" else "auto",
                             mode=mode, max_memory=max_memory, progress=lambda d, t: tiles.append(t))
    sec = time.perf_counter() - t0
    if out:
        np.save(out, y)
    return {"tile": tile, "mode": mode, "seconds": sec, "tiles": tiles[-1] if tiles else 1,
            "peak_rss_mb": rss_mb(), "delta_rss_mb": rss_mb() - base}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", default="1024")
    ap.add_argument("--tiles", default="0,256,512")
    ap.add_argument("--modes", default="exact,blend")
    ap.add_argument("--max-memory", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--big", default=None, help="HxW: one exact run with tile auto")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--save", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.one:
        h, w, tile, mode = a.one
        print(json.dumps(case(int(h), int(w), tile, mode, a.device, a.save, a.max_memory)))
        return
    dev = torch.device(a.device)
    if a.big:
        h, w = (int(v) for v in a.big.lower().split("x"))
        r = case(h, w, "auto", "exact", a.device, None, a.max_memory)
        print(f"machine: {machine(dev)}")
        print(f"{h}x{w} exact tile auto: {r['seconds']:.0f} s, {r['tiles']} tiles, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB (budget {memory.default_budget(dev) / 2**20:.0f} MB)")
        return
    h, w = (int(v) for v in (a.size.split("x") * 2)[:2])
    tmp = tempfile.mkdtemp()
    rows = []

    def sub(tile: str, mode: str, save: str | None = None) -> dict:
        cmd = [sys.executable, __file__, "--device", a.device, "--one", str(h), str(w), tile, mode]
        if save:
            cmd += ["--save", save]
        if a.max_memory:
            cmd += ["--max-memory", a.max_memory]
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        if dev.type != "cpu":  # GPU: in process, memory is the CUDA peak
            return case(h, w, tile, mode, a.device, save, a.max_memory)
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(res.stdout.strip().splitlines()[-1])

    ref_path = os.path.join(tmp, "whole.npy")
    whole = sub("0", "exact", ref_path)
    ref = np.load(ref_path)
    whole["maxdiff"] = 0.0
    rows.append(whole)
    for mode in a.modes.split(","):
        for tile in [t for t in a.tiles.split(",") if t != "0"]:
            p = os.path.join(tmp, f"{mode}_{tile}.npy")
            r = sub(tile, mode, p)
            r["maxdiff"] = float(np.abs(np.load(p) - ref).max())
            rows.append(r)
            print(f"  done {mode} {tile}", file=sys.stderr, flush=True)
    print(f"machine: {machine(dev)}, device {dev}, image {h}x{w}")
    print(f"{'mode':>6} {'tile':>6} {'tiles':>6} {'seconds':>8} {'peak RSS MB':>12} {'max |diff|':>11}")
    for r in rows:
        mode = r["mode"] if r["tile"] != "0" else "whole"
        print(f"{mode:>6} {r['tile']:>6} {r['tiles']:>6} {r['seconds']:>8.2f} "
              f"{r['peak_rss_mb']:>12.0f} {r['maxdiff']:>11.2e}")


if __name__ == "__main__":
    main()
