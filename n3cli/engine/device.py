"""Device selection: one option for CPU, CUDA and MPS."""

from __future__ import annotations

import torch

from n3cli.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda[:i]|mps`` to an available :class:`torch.device`.

    ``auto`` prefers CUDA, then MPS, then CPU. Asking for a device that is not available
    is a usage error with a hint, never a silent fallback. Choosing the CPU also turns
    on flushing of denormal floats (:func:`flush_denormals`).
    """
    dev = _resolve(name)
    if dev.type == "cpu":
        flush_denormals()
    return dev


def flush_denormals() -> bool:
    """Treat denormal floats as zero on the CPU (process-wide); False where unsupported.

    Trained N3Nets produce denormals (softmax weights and activations far below 1e-38),
    and x86 CPUs take a slow path for each: with the bundled weights a training step and
    an inference pass are 4.5x and 4.2x slower without this (``bench/denormals.py``,
    docs/PERFORMANCE.md). Values that small change no output at float32 precision.
    """
    return bool(torch.set_flush_denormal(True))


def _resolve(name: str) -> torch.device:
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
