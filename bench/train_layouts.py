"""Training-step speed of a recipe's model by memory layout, autocast and batch size.

    python bench/train_layouts.py [--config configs/blind-gray.toml] [--device cuda]
                                  [--batches 32,64] [--size 80] [--steps 6] [--threads N]

For each of channels_last off/on, bf16 autocast off/on (the N3 blocks kept in float32,
as ``n3 train`` does) and each batch size: 3 warm-up steps, then the mean wall time of
``--steps`` steps of forward + sum of squares + backward + Adam (``n3 train``'s own
optimiser: fused on CUDA in the default layout, single-tensor with channels_last; its
weight decay groups too), on random inputs. cuDNN autotuning and TF32 convolutions are on, as in ``n3 train`` on CUDA. The
GPU section of docs/PERFORMANCE.md quotes an inline version of this script run on an
H200 before it was committed (plain Adam without weight decay groups there). On the CPU
the process keeps freed memory, as ``n3 train`` does; bf16 there pays only on CPUs with
native bf16 arithmetic (AVX512-BF16 or AMX; docs/PERFORMANCE.md, "bf16 autocast on the CPU").
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "0")  # as n3 train: no huge pages (before _common)
import _common  # noqa: F401  (puts the checkout on sys.path)
import torch

from _common import machine, sync
from n3cli.engine.device import keep_freed_host_memory
from n3cli.models.arch import get_arch
from n3cli.train.config import load_config
from n3cli.train.loop import keep_n3_fp32, make_optimizer


def step_time(cfg, device: torch.device, batch: int, size: int, steps: int,
              channels_last: bool, bf16: bool) -> float:
    torch.manual_seed(0)
    net = get_arch(cfg.arch).build(cfg.model).to(device).train()
    if bf16:
        keep_n3_fp32(net)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    forward = net
    if hasattr(net, "at_scale"):  # super-resolution: the x2 case, from a low-resolution crop
        forward, size = net.at_scale(2), size // 2
    channels = getattr(cfg.model, "in_channels", 1)
    x = torch.rand(batch, channels, size, size, device=device).contiguous(memory_format=fmt)
    run_cfg = replace(cfg, runtime=replace(cfg.runtime, channels_last=channels_last))
    opt = make_optimizer(net, run_cfg, device)  # n3 train's choice of Adam for this layout

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
        loss = (out.float() ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/blind-gray.toml")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="32,64")
    ap.add_argument("--size", type=int, default=80)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cpu":
        keep_freed_host_memory()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = load_config(args.config)
    print(f"machine: {machine(device)}; {args.config}, {args.size}x{args.size} crops")
    print(f"  {'channels_last':>13s} {'bf16':>5s} {'batch':>5s} {'ms/step':>8s} {'samples/s':>9s}")
    for cl in (False, True):
        for bf16 in (False, True):
            for batch in (int(b) for b in args.batches.split(",")):
                sec = step_time(cfg, device, batch, args.size, args.steps, cl, bf16)
                print(f"  {str(cl):>13s} {str(bf16):>5s} {batch:5d} {1000 * sec:8.1f} {batch / sec:9.0f}")


if __name__ == "__main__":
    main()
