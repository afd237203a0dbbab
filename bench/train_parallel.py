"""One training run on all cores, or one single-thread run per core side by side?

    python bench/train_parallel.py [--cores 2] [--steps 30] [--only cpu-blind-gray] [--bf16]

Times the training step of a bundled CPU recipe (random data, batch 16 of 80x80,
channels_last, freed memory kept and denormals flushed, as ``n3 train`` runs it) in three
set-ups on the same machine, one after the other:

- ``1 x N threads``: one process with ``--cores`` torch threads;
- ``N x 1 thread``: ``--cores`` processes of one thread each, started together;
- ``N x 1 thread, one DDP run``: the same processes as one data-parallel run (gloo, as
  ``torchrun --nproc-per-node N -m n3cli train`` runs it): each takes 1/N of the batch and
  the gradients are averaged every step, so the sum is one run's samples per second.

Prints the samples per second of each process and of the whole machine. Each process
runs a warm-up step, then ``--steps`` timed steps. The machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(threads: int, steps: int, only: str, batch: int, crop: int, bf16: bool) -> None:
    """Time ``steps`` training steps; prints one JSON line (samples/s).

    With ``WORLD_SIZE`` > 1 in the environment the process joins a gloo group and trains
    its share of the batch under DistributedDataParallel."""
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "0")  # as n3 train (before the first tensor)
    import torch

    sys.path.insert(0, str(HERE))
    import _common  # noqa: F401  (checkout on sys.path, denormals flushed)
    from recipe_speed import RECIPES

    from n3cli.engine.device import keep_freed_host_memory
    from n3cli.train.loop import freeze_unapplied
    from n3cli.models import N3Net, N3NetConfig

    torch.set_num_threads(threads)
    keep_freed_host_memory()
    matches = [(n, k) for n, k in RECIPES.items() if only in n]
    if not matches:
        raise SystemExit(f"no recipe of bench/recipe_speed.py matches '{only}'")
    name, kw = matches[0]
    cfg = N3NetConfig(**kw)
    fmt = torch.channels_last
    net = N3Net(cfg).train().to(memory_format=fmt)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    freeze_unapplied(net)  # as n3 train does (DDP would wait for a gradient that never comes)
    if world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        dist.init_process_group("gloo")
        net = DistributedDataParallel(net)
        batch //= world
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x = torch.rand(batch, cfg.in_channels, crop, crop).contiguous(memory_format=fmt)

    if bf16:  # as runtime.amp = "bf16": autocast, the N3 blocks kept in float32
        from n3cli.train.loop import keep_n3_fp32

        keep_n3_fp32(net.module if world > 1 else net)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = (out.float() - x[:, :cfg.out_channels]).pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - t
    print(json.dumps({"recipe": name, "threads": threads, "samples_per_s": batch * steps / wall}))
    if world > 1:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(n: int, threads: int, args: argparse.Namespace, ddp: bool = False) -> list[dict]:
    cmd = [sys.executable, __file__, "--worker", str(threads), "--steps", str(args.steps),
           "--only", args.only, "--batch", str(args.batch), "--crop", str(args.crop)] \
        + (["--bf16"] if args.bf16 else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if ddp:  # what torchrun would export
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE=str(n))
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                              env={**env, **({"RANK": str(i), "LOCAL_RANK": str(i)} if ddp else {})})
             for i in range(n)]
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"worker failed (exit {p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--only", default="cpu-blind-gray", help="recipe of bench/recipe_speed.py (name contains)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=80)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast, as the CPU recipes train on a "
                    "CPU with bf16 in hardware (runtime.amp = auto)")
    ap.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.only, args.batch, args.crop, args.bf16)
        return
    rows = [(f"1 x {args.cores} threads", _launch(1, args.cores, args)),
            (f"{args.cores} x 1 thread", _launch(args.cores, 1, args)),
            (f"{args.cores} x 1 thread, one DDP run", _launch(args.cores, 1, args, ddp=True))]
    print(f"recipe: {rows[0][1][0]['recipe']}{' (bf16 autocast)' if args.bf16 else ''}, "
          f"batch {args.batch} x {args.crop}x{args.crop}, "
          f"{args.steps} timed steps per process")
    print(f"{'set-up':>30} {'samples/s per process':>24} {'samples/s in all':>17} {'vs one run':>11}")
    base = sum(r["samples_per_s"] for r in rows[0][1])
    for label, res in rows:
        total = sum(r["samples_per_s"] for r in res)
        per = ", ".join(f"{r['samples_per_s']:.1f}" for r in res)
        print(f"{label:>30} {per:>24} {total:17.1f} {total / base:10.2f}x")


if __name__ == "__main__":
    main()
