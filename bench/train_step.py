"""One training step (batch 32, 80x80 crops): paper-config N3Net vs DnCNN-18.

    python bench/train_step.py [--device cpu] [--batch 32] [--size 80] [--threads N]
                               [--channels-last] [--repeat 2] [--malloc-default]

A step is forward + loss (0.125 * sum of squared errors / batch, as the paper) +
backward + Adam update, in training mode (BatchNorm batch statistics; the N3 blocks' one
dense chunk per batch). One warm-up step at the timed batch size, then the fastest of
``--repeat`` steps: the steady state of a training run. Wall and process CPU seconds,
system seconds and minor page faults of that step. Each model runs in its own subprocess
on the CPU so that the peak RSS and the allocator setting are its own: on the CPU the
process keeps freed memory as ``n3 train`` does (``keep_freed_host_memory``), unless
``--malloc-default``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

# As n3 train: no huge pages while freed memory is kept (the default); with glibc's default
# malloc (runtime.keep_host_memory = false) n3 train asks for them. Set before _common.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1" if "--malloc-default" in sys.argv else "0")
import _common  # noqa: F401
import torch

from _common import DnCNN, machine, sync
from n3cli.engine.device import keep_freed_host_memory
from n3cli.models import N3Net, N3NetConfig


def step_case(name: str, batch: int, size: int, device: torch.device,
              channels_last: bool = False, repeat: int = 2, malloc_default: bool = False) -> dict:
    if device.type == "cpu" and not malloc_default:
        keep_freed_host_memory()
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

    step(batch)  # warm-up at the timed size: first-touch faults, oneDNN primitives
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    best = None
    for _ in range(max(1, repeat)):
        sync(device)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0, t0 = time.process_time(), time.perf_counter()
        step(batch)
        sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        run = (wall, cpu, r1.ru_stime - r0.ru_stime, r1.ru_minflt - r0.ru_minflt)
        best = run if best is None or run[0] < best[0] else best
    wall, cpu, sys_s, faults = best
    peak = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"model": name, "seconds": wall, "cpu_s": cpu, "sys_s": sys_s, "faults": faults, "peak_mb": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=80)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--channels-last", action="store_true", help="both models in channels_last")
    ap.add_argument("--repeat", type=int, default=2, help="timed steps; the fastest counts")
    ap.add_argument("--malloc-default", action="store_true",
                    help="CPU: glibc's default malloc (freed activations unmapped, faulted in again)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    if a.one:
        print(json.dumps(step_case(a.one, a.batch, a.size, dev, a.channels_last, a.repeat, a.malloc_default)))
        return
    rows = []
    for name in ("n3net", "dncnn18"):
        if dev.type == "cpu":
            cmd = [sys.executable, __file__, "--one", name, "--batch", str(a.batch),
                   "--size", str(a.size)] + (["--threads", str(a.threads)] if a.threads else []) \
                + (["--channels-last"] if a.channels_last else []) + ["--repeat", str(a.repeat)] \
                + (["--malloc-default"] if a.malloc_default else [])
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        else:
            rows.append(step_case(name, a.batch, a.size, dev, a.channels_last, a.repeat))
    print(f"machine: {machine(dev)}, device {dev}, batch {a.batch} x {a.size}x{a.size}, "
          + ("channels_last" if a.channels_last else "default layout")
          + (", glibc default malloc" if a.malloc_default else ", freed memory kept (as n3 train)"
             if dev.type == "cpu" else ""))
    print(f"{'model':>8} {'wall s':>8} {'cpu s':>8} {'sys s':>6} {'faults':>9} {'wall ratio':>11} "
          f"{'cpu ratio':>10} {'peak RSS MB':>11}")
    ref = rows[-1]
    for r in rows:
        print(f"{r['model']:>8} {r['seconds']:>8.2f} {r['cpu_s']:>8.2f} {r['sys_s']:>6.2f} {r['faults']:>9d} "
              f"{r['seconds'] / ref['seconds']:>11.2f} {r['cpu_s'] / ref['cpu_s']:>10.2f} "
              f"{r['peak_mb']:>11.0f}")


if __name__ == "__main__":
    main()
