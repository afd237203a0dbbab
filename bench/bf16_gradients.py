"""How far bf16 autocast moves a training step: gradients against float32, on real batches.

    python bench/bf16_gradients.py [--config configs/cpu-blind-gray.toml]
                                   [--weights weights/n3net-blind.safetensors] [--batches 4]

The recipe's model with trained weights (``--weights``; random ones without), in training
mode, on batches made as ``n3 train`` makes them (the recipe's images, crops and task).
For each batch: the loss and the gradient of all parameters in float32 and under bf16
autocast (the N3 blocks kept in float32, as ``runtime.amp = "bf16"`` trains). Printed: the
relative change of the loss, the cosine between the two gradients and the relative norm
of their difference; and, as the scale to read them against, the cosine between the
float32 gradients of consecutive batches (the noise that stochastic gradient descent
lives with anyway). On the CPU, the process keeps freed memory as ``n3 train`` does.
"""

from __future__ import annotations

import argparse
import copy
import os
from pathlib import Path

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "0")  # as n3 train (before _common)
import _common  # noqa: F401  (puts the checkout on sys.path)
import torch
from safetensors.torch import load_file

from _common import machine
from n3cli.data.degrade import crop_batch, to_float
from n3cli.data.folder import load_training_bank
from n3cli.engine.device import keep_freed_host_memory
from n3cli.models.arch import get_arch
from n3cli.train.config import OptimConfig, load_config
from n3cli.train.loop import keep_n3_fp32, training_loss
from n3cli.train.tasks import make_task


def gradient(net: torch.nn.Module, task, inp: torch.Tensor, target: torch.Tensor, level,
             bf16: bool, optim: OptimConfig) -> tuple[float, torch.Tensor]:
    """The recipe's loss and the flattened gradient of every parameter."""
    net.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = task.run(net, inp, level)
    loss = training_loss(optim, out, target)
    loss.backward()
    # Every parameter, zeros where none reached it (an SR batch trains one scale's tail).
    return loss.item(), torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                                   for p in net.parameters()])


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b / (a.norm() * b.norm()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/cpu-blind-gray.toml")
    ap.add_argument("--weights", default="weights/n3net-blind.safetensors",
                    help="trained weights of the recipe's model ('' for random ones)")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_host_memory()
    cfg = load_config(Path(args.config))
    net = get_arch(cfg.arch).build(cfg.model).train()
    if args.weights:
        net.load_state_dict(load_file(args.weights), strict=True)
    if cfg.runtime.channels_last:
        net = net.to(memory_format=torch.channels_last)
    net_bf16 = copy.deepcopy(net)
    keep_n3_fp32(net_bf16)
    task = make_task(cfg.task)
    bank = load_training_bank([Path(p) for p in cfg.data.train], cfg.data.color, cfg.data.crop,
                              cfg.data.limit, cfg.data.holdout)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"machine: {machine(torch.device('cpu'))}; {args.config}, weights {args.weights or 'random'}, "
          f"batch {cfg.optim.batch_size} x {cfg.data.crop}x{cfg.data.crop}")
    print(f"  {'batch':>5} {'loss f32':>9} {'bf16 rel':>9} {'cos(f32,bf16)':>13} {'|diff|/|g|':>10} "
          f"{'cos(prev batch)':>15}")
    prev = None
    for i in range(args.batches):
        idx = torch.randint(len(bank), (cfg.optim.batch_size,), generator=gen)
        clean = to_float(crop_batch(bank, idx, cfg.data.crop, gen, cfg.data.augment))
        inp, target, level = task.make_batch(clean, gen)
        if cfg.runtime.channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        loss32, g32 = gradient(net, task, inp, target, level, False, cfg.optim)
        loss16, g16 = gradient(net_bf16, task, inp, target, level, True, cfg.optim)
        across = f"{cosine(g32, prev):15.4f}" if prev is not None else f"{'-':>15}"
        print(f"  {i:5d} {loss32:9.4f} {(loss16 - loss32) / loss32:+9.2e} {cosine(g32, g16):13.5f} "
              f"{float((g16 - g32).norm() / g32.norm()):10.4f} {across}", flush=True)
        prev = g32


if __name__ == "__main__":
    main()
