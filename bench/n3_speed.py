"""N3Net (paper config) vs its conv twins vs DnCNN-17: inference seconds, ratios, memory.

    python bench/n3_speed.py [--device cpu|cuda] [--sizes 256,512,1024] [--bm3d] [--plain]
                             [--precision fp32|fp16|bf16]

Two conv twins: ``twin`` replaces each whole N3 block (embedding and temperature CNNs
included) by a pass-through; ``twin+e`` keeps the blocks' embedding and temperature CNNs,
so it has exactly N3Net's convolutions and prices only the neighbour search and
aggregation. Every model runs as the engine runs it (``n3cli.engine.optimize``:
BatchNorm folded, channels_last on the CPU); ``--plain`` runs the modules as built
(eval-mode BatchNorm, default layout) for comparison. ``--precision``: the convolutions'
precision as the engine runs it (``n3 denoise --precision``; the N3 kernels stay float32).

One timed run per case after a small warm-up (``--repeat N``: the fastest of N). Besides wall seconds the table shows the
process CPU seconds (all threads): on a machine shared with other jobs, time slicing
inflates wall time but much less the CPU time, so ratios are given for both. On the CPU every case runs in its own
subprocess so that its peak RSS (ru_maxrss) minus the RSS after loading is the case's
own memory; on CUDA the peak comes from ``torch.cuda.max_memory_allocated``.
GFLOP/s counts the convolutions plus the N3 blocks' nominal work (spec section 7).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import _common  # noqa: F401  (puts the checkout on sys.path)
import torch

from _common import DnCNN, conv_flops, machine, n3_flops, rss_mb, timed
from n3cli.engine.optimize import as_layout, inference_model
from n3cli.engine.precision import resolve_precision
from n3cli.models import N3Net, N3NetConfig
from n3cli.models.n3net import conv_twin

MODELS = ("n3net", "twin", "twin+e", "dncnn17")


def build(name: str) -> tuple[torch.nn.Module, float]:
    torch.manual_seed(0)
    cfg = N3NetConfig()
    if name == "n3net":
        return N3Net(cfg), 1.0
    if name in ("twin", "twin+e"):
        return conv_twin(cfg, keep_embedding=name == "twin+e"), 0.0
    return DnCNN(17), 0.0


def run_case(name: str, size: int, device: torch.device, plain: bool = False,
             repeat: int = 1, precision: str = "fp32") -> dict:
    model, n3 = build(name)
    dtype = resolve_precision(precision, device)
    x = torch.rand(1, 1, size, size, device=device)
    if plain:
        model = model.to(device).eval()
    else:
        model, x = inference_model(model, device, dtype), as_layout(x.to(dtype), device)
    with torch.inference_mode():
        model(x[..., :128, :128])  # warm-up: kernels, allocator
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        else:
            base = rss_mb() * 2**20
        sec = cpu = float("inf")
        for _ in range(repeat):  # the fastest run (wall and CPU seconds each their own best)
            cpu0 = time.process_time()
            sec = min(sec, timed(lambda: model(x), device))
            cpu = min(cpu, time.process_time() - cpu0)
        peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                else rss_mb() * 2**20) - base
    flops = conv_flops(model, x) + (n3_flops(N3NetConfig(), size, size) if n3 else 0.0)
    return {"model": name, "size": size, "seconds": sec, "cpu_s": cpu, "gflops": flops / sec / 1e9,
            "peak_mb": peak / 2**20, "bytes_per_px": peak / (size * size)}


def bm3d_case(size: int) -> dict | None:
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return None
    import time

    import numpy as np
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    clean = (0.5 + 0.3 * np.sin(12 * xx) * np.cos(8 * yy)).astype(np.float32)
    noisy = clean + rng.normal(0, 25 / 255, clean.shape).astype(np.float32)
    t0 = time.perf_counter()
    out = bm3d.bm3d(noisy, 25 / 255)
    sec = time.perf_counter() - t0
    psnr = 10 * np.log10(1 / np.mean((out - clean) ** 2))
    return {"model": "bm3d", "size": size, "seconds": sec, "psnr": float(psnr)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="256,512,1024")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--bm3d", action="store_true", help="also time BM3D at 256x256")
    ap.add_argument("--plain", action="store_true",
                    help="run the modules as built: no BatchNorm folding, default layout")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per case, the fastest counts (steadier ratios on a shared machine)")
    ap.add_argument("--inprocess", action="store_true", help="no subprocess per case (CPU)")
    ap.add_argument("--one", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"),
                    help="of the convolutions, as the engine runs them (not with --plain)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if a.one:
        print(json.dumps(run_case(a.one[0], int(a.one[1]), device, a.plain, a.repeat, a.precision)))
        return
    rows = []
    for size in [int(s) for s in a.sizes.split(",")]:
        for name in a.models.split(","):
            if device.type == "cpu" and not a.inprocess:
                cmd = [sys.executable, __file__, "--device", "cpu", "--one", name, str(size),
                       "--repeat", str(a.repeat), "--precision", a.precision]
                if a.threads:
                    cmd += ["--threads", str(a.threads)]
                if a.plain:
                    cmd.append("--plain")
                res = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            else:
                rows.append(run_case(name, size, device, a.plain, a.repeat, a.precision))
            print(f"  done {name} {size}: {rows[-1]['seconds']:.3f} s", file=sys.stderr, flush=True)
    if a.bm3d:
        r = bm3d_case(256)
        if r:
            rows.append(r)
    print(f"machine: {machine(device)}, device {device}, "
          + ("plain modules" if a.plain else "engine-prepared (BatchNorm folded, device layout)")
          + ("" if a.precision == "fp32" else f", {a.precision} convolutions"))
    print(f"{'size':>6} {'model':>8} {'wall s':>8} {'/twin':>6} {'/twin+e':>7} {'/dncnn':>7} "
          f"{'cpu s':>8} {'/twin':>6} {'/twin+e':>7} {'/dncnn':>7} {'GFLOP/s':>8} {'peak MB':>8} "
          f"{'B/px':>6}")
    by = {(r["model"], r["size"]): r for r in rows}
    for r in rows:
        if r["model"] == "bm3d":
            print(f"{r['size']:>6} {'bm3d':>8} {r['seconds']:>8.3f}   (PSNR {r['psnr']:.2f} dB, sigma 25)")
            continue
        tw, te, dn = (by.get((m, r["size"])) for m in ("twin", "twin+e", "dncnn17"))

        def ratio(ref, key):
            return f"{r[key] / ref[key]:.2f}" if ref else "-"
        print(f"{r['size']:>6} {r['model']:>8} {r['seconds']:>8.3f} {ratio(tw, 'seconds'):>6} "
              f"{ratio(te, 'seconds'):>7} {ratio(dn, 'seconds'):>7} {r['cpu_s']:>8.3f} "
              f"{ratio(tw, 'cpu_s'):>6} {ratio(te, 'cpu_s'):>7} {ratio(dn, 'cpu_s'):>7} "
              f"{r['gflops']:>8.1f} {r['peak_mb']:>8.0f} {r['bytes_per_px']:>6.0f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine(device), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
