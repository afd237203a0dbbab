"""Device selection: one option for CPU, CUDA and MPS."""

from __future__ import annotations

import torch

from n3cli.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda[:i]|mps`` to an available :class:`torch.device`.

    ``auto`` prefers CUDA, then MPS, then CPU. Asking for a device that is not available
    is a usage error with a hint, never a silent fallback.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise UsageError(f"unknown device '{name}'", "use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("CUDA was requested but is not available", "use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"no CUDA device {dev.index}",
                             f"this machine has {torch.cuda.device_count()}")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError("MPS was requested but is not available", "use --device cpu")
    elif dev.type != "cpu":
        raise UsageError(f"unsupported device '{name}'", "use auto, cpu, cuda, cuda:N or mps")
    return dev
