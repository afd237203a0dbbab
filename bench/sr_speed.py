"""Time per output pixel: the bundled SR recipe at x2/x3/x4 against the bundled blind
denoiser on the same output size, both through the engine (restore_image, whole image,
fp32, prepared), random weights of the committed recipes (speed does not depend on them).

    python bench/sr_speed.py [--size 1024] [--threads 1] [--repeat 3]
                             [--sr-config configs/cpu-sr.toml] [--set model.features=48 ...]

``--sr-config``/``--set`` time a candidate recipe before spending CPU hours training it.

The issue's target: the SR model's time per output pixel at x2 no more than n3net-blind's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from _common import best_of, machine  # also puts the checkout on sys.path
from n3cli.engine import restore_image, sigma_conditions
from n3cli.engine.optimize import inference_model
from n3cli.models.arch import get_arch
from n3cli.train.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _model(config: Path, scale: int | None = None, overrides: list[str] = ()):
    cfg = load_config(config, overrides)
    arch = get_arch(cfg.arch)
    torch.manual_seed(0)
    net = arch.build(cfg.model).eval()
    if scale is not None:
        return net.at_scale(scale), arch.describe(cfg.model, scale=scale)
    return net, arch.describe(cfg.model, task="denoise", sigma_range=(0.0, 75.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1024, help="output side in pixels")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sr-config", type=Path, default=REPO / "configs" / "cpu-sr.toml")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override the SR config (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    n = args.size
    rng = np.random.default_rng(0)
    rows = []
    net, desc = _model(REPO / "configs" / "cpu-blind-gray.toml")
    prepared = inference_model(net, cpu)
    img = rng.random((n, n, 1), dtype=np.float32)
    t_blind = best_of(lambda: restore_image(prepared, desc, img, sigma_conditions(25), cpu, tile=0, prepared=True),
                    args.repeat)
    rows.append(("n3net-blind (denoise)", n, t_blind))
    for s in (2, 3, 4):
        net, desc = _model(args.sr_config, s, args.set)
        prepared = inference_model(net, cpu)
        lr = rng.random((n // s, n // s, 1), dtype=np.float32)
        t = best_of(lambda: restore_image(prepared, desc, lr, None, cpu, tile=0, prepared=True), args.repeat)
        rows.append((f"n3net-sr x{s}", (n // s) * s, t))
    print(machine(cpu))
    print(f"SR recipe: {args.sr_config.name}" + "".join(f" --set {o}" for o in args.set))
    print(f"{'model':24s} {'output':>9s} {'seconds':>8s} {'us / out px':>12s} {'vs blind':>9s}")
    per_blind = t_blind / (n * n)
    for name, side, t in rows:
        per = t / (side * side)
        print(f"{name:24s} {side:4d}x{side:<4d} {t:8.2f} {per * 1e6:12.3f} {per / per_blind:8.2f}x")


if __name__ == "__main__":
    main()
