"""One training step (batch 32, 80x80 crops): paper-config N3Net vs DnCNN-18.

    python bench/train_step.py [--device cpu] [--batch 32] [--size 80] [--threads N]
                               [--channels-last]

A step is forward + loss (0.125 * sum of squared errors / batch, as the paper) +
backward + Adam update, in training mode (BatchNorm batch statistics; the N3 blocks' one
dense chunk per batch). One warm-up step at batch 2, then one timed step; wall and process
CPU seconds (the CPU time is the robust figure on a shared machine). Each model runs in
its own subprocess on the CPU so that the peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import _common  # noqa: F401
import torch

from _common import DnCNN, machine, rss_mb, sync
from n3cli.models import N3Net, N3NetConfig


def step_case(name: str, batch: int, size: int, device: torch.device,
              channels_last: bool = False) -> dict:
    torch.manual_seed(0)
    model = (N3Net(N3NetConfig()) if name == "n3net" else DnCNN(18)).to(device).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(b: int) -> None:
        clean = torch.rand(b, 1, size, size, device=device).contiguous(memory_format=fmt)
        noisy = clean + torch.randn_like(clean) * 25 / 255
        opt.zero_grad(set_to_none=True)
        loss = 0.125 * ((model(noisy) - clean) ** 2).sum() / b
        loss.backward()
        opt.step()

    step(2)
    base = rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync(device)
    c0, t0 = time.process_time(), time.perf_counter()
    step(batch)
    sync(device)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else rss_mb() - base)
    return {"model": name, "seconds": wall, "cpu_s": cpu, "peak_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=80)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--channels-last", action="store_true", help="both models in channels_last")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if a.one:
        print(json.dumps(step_case(a.one, a.batch, a.size, dev, a.channels_last)))
        return
    rows = []
    for name in ("n3net", "dncnn18"):
        if dev.type == "cpu":
            cmd = [sys.executable, __file__, "--one", name, "--batch", str(a.batch),
                   "--size", str(a.size)] + (["--threads", str(a.threads)] if a.threads else []) \
                + (["--channels-last"] if a.channels_last else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        else:
            rows.append(step_case(name, a.batch, a.size, dev, a.channels_last))
    print(f"machine: {machine(dev)}, device {dev}, batch {a.batch} x {a.size}x{a.size}, "
          + ("channels_last" if a.channels_last else "default layout"))
    print(f"{'model':>8} {'wall s':>8} {'cpu s':>8} {'wall ratio':>11} {'cpu ratio':>10} {'peak MB':>8}")
    ref = rows[-1]
    for r in rows:
        print(f"{r['model']:>8} {r['seconds']:>8.2f} {r['cpu_s']:>8.2f} "
              f"{r['seconds'] / ref['seconds']:>11.2f} {r['cpu_s'] / ref['cpu_s']:>10.2f} "
              f"{r['peak_mb']:>8.0f}")


if __name__ == "__main__":
    main()
