"""Training-step time of candidate CPU recipes for the bundled blind models.

    python bench/recipe_speed.py [--threads 1] [--batch 16] [--crop 80] [--only TEXT]
                                 [--layouts default,channels_last]

Prints one row per architecture: parameters and the best of 3 forward+backward+Adam
steps on random data, once per memory layout asked for. This is how the half-resolution recipe of
configs/cpu-blind-{gray,color}.toml was chosen (docs/RESULTS.md, "Bundled models").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "0")  # as n3 train: no huge pages (before _common)
import _common  # noqa: E402,F401  (the checkout on sys.path; denormals flushed, as n3 train does)
from n3cli.models import N3Net, N3NetConfig  # noqa: E402

RECIPES = {
    "paper (64 feat, full res)": dict(in_channels=2),
    "32 feat, full res": dict(in_channels=2, features=32, embed_features=32),
    "unshuffle 2, 64 feat, window 8": dict(in_channels=2, unshuffle=2, window=8),
    "unshuffle 2, 48 feat, window 7 (cpu-blind-gray)": dict(in_channels=2, unshuffle=2, window=7,
                                                             features=48, embed_features=32),
    "colour: unshuffle 2, 48 feat, 12 N3 ch (cpu-blind-color)": dict(
        image_channels=3, in_channels=4, out_channels=3, unshuffle=2, window=7, features=48,
        embed_features=32, n3_channels=12),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=80)
    ap.add_argument("--only", default="", help="only recipes whose name contains this text")
    ap.add_argument("--layouts", default="default",
                    help="comma-separated: default, channels_last (both: compare them)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    layouts = {"default": torch.contiguous_format, "channels_last": torch.channels_last}
    print(f"{'recipe':58} {'layout':>13} {'params':>9} {'step s':>7} {'samples/s':>9}")
    for (name, kw), layout in ((r, lay) for r in RECIPES.items() if args.only in r[0]
                               for lay in args.layouts.split(",")):
        fmt = layouts[layout]
        cfg = N3NetConfig(**kw)
        net = N3Net(cfg).train().to(memory_format=fmt)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x = torch.rand(args.batch, cfg.in_channels, args.crop, args.crop).contiguous(memory_format=fmt)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            loss = (net(x) - x[:, :cfg.out_channels]).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            best = min(best, time.perf_counter() - t)
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:58} {layout:>13} {params:9,d} {best:7.2f} {args.batch / best:9.1f}", flush=True)


if __name__ == "__main__":
    main()
