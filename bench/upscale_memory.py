"""Peak memory and time of one large upscale in exact tiled mode (tile auto).

    python bench/upscale_memory.py [--input 2000x1500] [--scale 2] [--model n3net-sr] [--threads 2]

A smooth synthetic colour image (luminance through the model, chroma by bicubic, as
``n3 upscale`` runs it) through ``restore_image`` with the installed model (or, if it is
not installed, random weights of configs/cpu-sr.toml). Prints the output size, tiles,
seconds and the process's peak RSS (ru_maxrss). Issue 10's bar: a 4000x3000 output
(x2 of 2000x1500, colour) with peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import machine, rss_mb
from n3cli.engine import restore_image


def load(name: str, scale: int):
    from n3cli.errors import N3Error
    from n3cli.weights import load_model

    try:
        model, spec = load_model(name, "cpu", scale=scale)
        return model, spec.descriptor, name
    except N3Error:
        from pathlib import Path

        from n3cli.models.arch import get_arch
        from n3cli.train.config import load_config

        cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "cpu-sr.toml")
        arch = get_arch(cfg.arch)
        return (arch.build(cfg.model).eval().at_scale(scale), arch.describe(cfg.model, scale=scale),
                "cpu-sr.toml (random weights)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", default="2000x1500", help="W x H of the low-resolution input")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--model", default="n3net-sr")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.input.lower().split("x"))
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.3 * np.sin(20 * xx) * np.cos(14 * yy), 0.4 + 0.2 * np.cos(9 * xx),
                    0.5 + 0.2 * np.sin(7 * yy)], axis=-1).astype(np.float32)
    model, desc, name = load(args.model, args.scale)
    base = rss_mb()
    tiles: list[int] = []
    t0 = time.perf_counter()
    out = restore_image(model, desc, img, None, torch.device("cpu"), tile="auto", mode="exact",
                        progress=lambda done, total: tiles.append(total))
    sec = time.perf_counter() - t0
    print(machine(torch.device("cpu")))
    print(f"model {name}, input {w}x{h} colour, x{args.scale} -> {out.shape[1]}x{out.shape[0]}, "
          f"exact tile auto: {tiles[-1] if tiles else 1} tiles, {sec:.0f} s, "
          f"peak RSS {rss_mb():.0f} MB (before the run {base:.0f} MB)")


if __name__ == "__main__":
    main()
