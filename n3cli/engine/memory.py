"""Memory budgets: how much the engine may use, and how much a tile of a model needs.

Inference memory of N3Net is linear in pixels: the convolution activations, the N3
blocks' unfolded inputs and their k aggregated images; the N3 kernels' per-chunk
buffers are bounded separately (``max_chunk_bytes``). ``bytes_per_pixel`` is an estimate
from the architecture; bench/tiling.py and bench/n3_speed.py measure the real figure
(docs/PERFORMANCE.md) and the estimate is kept above it.
"""

from __future__ import annotations

import os
import resource

import torch

from n3cli.errors import UsageError
from n3cli.models.descriptor import ModelDescriptor

# Never plan with more than this on the CPU by default: the image, the output and the
# interpreter come on top, and a 12-MP job must stay under 2 GB of peak RSS.
CPU_DEFAULT_CAP = 1 << 30
CPU_FRACTION = 0.4
GPU_FRACTION = 0.6
FIXED_OVERHEAD = 96 << 20  # N3 chunk buffers (64 MiB) and allocator slack


def available_ram() -> int:
    """Bytes of RAM available to new allocations (MemAvailable), or 4 GiB if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def peak_rss() -> int:
    """Peak resident set size of this process in bytes (ru_maxrss)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if os.uname().sysname == "Darwin" else r * 1024


def current_rss() -> int:
    """Current resident set size in bytes (from /proc; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return peak_rss()


def default_budget(device: torch.device) -> int:
    """A safe share of free memory on ``device`` for one tile's activations."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * GPU_FRACTION)
    return int(min(available_ram() * CPU_FRACTION, CPU_DEFAULT_CAP))


def bytes_per_pixel(desc: ModelDescriptor, dtype: torch.dtype = torch.float32) -> int:
    """Estimated peak inference bytes per input pixel: the descriptor's figure (derived by
    the architecture, :func:`n3cli.models.registry.n3net_bytes_per_pixel`). Half precision
    does not lower it: the N3 aggregation, its peak, stays float32."""
    return max(1, int(desc.bytes_per_pixel))


def parse_size(text: str | int | None, option: str = "--max-memory") -> int | None:
    """``"4G"``, ``"512M"``, ``"1.5GB"``, ``"2GiB"`` or a byte count -> bytes (binary
    units; None stays None); anything else, or a size <= 0, is a :class:`UsageError`."""
    if text is None:
        return None
    if isinstance(text, bool):
        raise UsageError(f"{option} {text} is not a size", "e.g. 4G or 512M")
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    try:
        n = float(t[:-1] if mult > 1 else t) * mult
    except ValueError:
        raise UsageError(f"{option} '{text}' is not a size", "e.g. 4G or 512M") from None
    if not n > 0 or n == float("inf"):
        raise UsageError(f"{option} {text} must be a positive size", "e.g. 4G or 512M")
    return int(n)
