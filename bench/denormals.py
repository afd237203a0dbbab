"""Denormal floats on the CPU: a trained N3Net with and without flush-to-zero.

    python bench/denormals.py [--threads 2] [--repeat 3] [--size 256]

Times, in one run, one training step (batch 16 of 80x80 crops, Adam, the raw recipe's
input) and one inference pass (a size x size gray image, engine-prepared) of the bundled
``n3net-blind`` network, once with torch's default (denormals computed) and once with
``torch.set_flush_denormal(True)``, which ``resolve_device`` turns on for the CPU. Each
case runs in its own process, so the setting of one cannot leak into the other.
Random-init weights are timed too: they make no denormals, which is why the benchmarks
of fresh models never showed the effect.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from _common import best_of  # also puts the checkout on sys.path

REPO = Path(__file__).resolve().parents[1]


def _case(flush: bool, trained: bool, threads: int, repeat: int, size: int) -> dict:
    torch.set_flush_denormal(flush)  # after importing _common, which turns flushing on
    torch.set_num_threads(threads)
    from safetensors.torch import load_file

    from n3cli.engine.optimize import as_layout, inference_model
    from n3cli.models.raw import RawConfig, RawN3Net

    cfg = json.loads((REPO / "weights" / "n3net-blind.json").read_text())["config"]
    torch.manual_seed(0)
    net = RawN3Net(RawConfig(**{**cfg, "in_channels": 3, "noise_input": "sigma"}))
    if trained:
        net.load_state_dict(load_file(str(REPO / "weights" / "n3net-blind.safetensors")))
    net = net.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(16, 1, 80, 80, generator=gen)
    x = torch.cat([(clean + 0.05 * torch.randn(clean.shape, generator=gen)).clamp(0, 1),
                   torch.full_like(clean, 0.01), torch.full_like(clean, 1e-4)], 1)
    x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        loss = ((net(x) - clean) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    t_step = best_of(step, repeat)
    prepared = inference_model(net.eval(), torch.device("cpu"))
    img = torch.rand(1, 1, size, size, generator=gen)
    inp = as_layout(torch.cat([img, torch.full_like(img, 0.01), torch.full_like(img, 1e-4)], 1),
                    torch.device("cpu"))
    with torch.inference_mode():
        t_inf = best_of(lambda: prepared(inp), repeat)
    return {"flush": flush, "trained": trained, "step_s": t_step, "infer_s": t_inf}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--one", nargs=2, metavar=("FLUSH", "TRAINED"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(_case(a.one[0] == "1", a.one[1] == "1", a.threads, a.repeat, a.size)))
        return
    rows = []
    for trained in (True, False):
        for flush in (False, True):
            cmd = [sys.executable, __file__, "--one", str(int(flush)), str(int(trained)),
                   "--threads", str(a.threads), "--repeat", str(a.repeat), "--size", str(a.size)]
            rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    print(f"torch {torch.__version__}, {a.threads} threads; training step: batch 16 of 80x80; "
          f"inference: {a.size}x{a.size}")
    print(f"{'weights':10s} {'denormals':10s} {'step s':>8s} {'infer s':>8s} {'step x':>7s} {'infer x':>8s}")
    for r in rows:
        base = next(b for b in rows if b["trained"] == r["trained"] and b["flush"])
        print(f"{'trained' if r['trained'] else 'random':10s} {'flushed' if r['flush'] else 'computed':10s} "
              f"{r['step_s']:8.3f} {r['infer_s']:8.3f} {r['step_s'] / base['step_s']:7.2f} "
              f"{r['infer_s'] / base['infer_s']:8.2f}")


if __name__ == "__main__":
    main()
