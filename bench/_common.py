"""Helpers shared by the benchmarks: a plain DnCNN, FLOP counting, timing, machine info.

Not part of the package: DnCNN here is only a yardstick (Zhang et al. 2017: conv+ReLU,
(depth-2) x [conv, BN, ReLU], conv; 64 features, residual learning).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from n3cli.engine.device import flush_denormals, huge_pages_for_tensors  # noqa: E402

# Benchmarks time what the CLI runs, and the CLI's CPU path (resolve_device) flushes
# denormal floats (trained weights would otherwise take x86's slow path) and asks for huge
# pages for large tensors. Training benches set THP_MEM_ALLOC_ENABLE=0 before importing
# this module, as n3 train does; set it to 0 in the environment to time without them.
flush_denormals()
huge_pages_for_tensors()


class DnCNN(nn.Module):
    """DnCNN-``depth`` for gray images (17 for the standard model)."""

    def __init__(self, depth: int = 17, features: int = 64, channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False),
                       nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.body(x)


def conv_flops(model: nn.Module, x: torch.Tensor) -> float:
    """FLOPs (2 per multiply-add) of every Conv2d in one forward pass on ``x``."""
    total = [0.0]

    def hook(m: nn.Conv2d, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1]
        total[0] += 2.0 * out.numel() * (m.in_channels // m.groups) * k

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        model(x[..., :64, :64])
    for h in hs:
        h.remove()
    return total[0] * (x.shape[-2] * x.shape[-1]) / (64 * 64)


def n3_flops(cfg, h: int, w: int) -> float:
    """Nominal FLOPs of the N3 aggregations (spec section 7: distances + k aggregations)."""
    m = (h / cfg.stride) * (w / cfg.stride)
    cand = cfg.window ** 2 - 1
    dim = cfg.n3_channels * cfg.patch ** 2
    return cfg.num_n3 * 2.0 * m * cand * dim * (1 + cfg.k)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def best_of(fn, repeat: int) -> float:
    """Fastest of ``repeat`` timed calls of ``fn`` after one warm-up call (seconds)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    s = (f"python {platform.python_version()}, torch {torch.__version__}, {cpu}, "
         f"{os.cpu_count()} cpus, torch threads {torch.get_num_threads()}")
    if device.type == "cuda":
        s += f", {torch.cuda.get_device_name(device)}"
    return s


def rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
