"""Device selection: one option for CPU, CUDA and MPS."""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import torch

from n3cli.errors import UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda[:i]|mps`` to an available :class:`torch.device`.

    ``auto`` prefers CUDA, then MPS, then CPU. Asking for a device that is not available
    is a usage error with a hint, never a silent fallback. Choosing the CPU also turns
    on flushing of denormal floats (:func:`flush_denormals`) and, unless training said
    otherwise first, huge pages for large tensors (:func:`huge_pages_for_tensors`).
    """
    dev = _resolve(name)
    if dev.type == "cpu":
        flush_denormals()
        huge_pages_for_tensors()
    return dev


def flush_denormals() -> bool:
    """Treat denormal floats as zero on the CPU (process-wide); False where unsupported.

    Trained N3Nets produce denormals (softmax weights and activations far below 1e-38),
    and x86 CPUs take a slow path for each: with the bundled weights a training step and
    an inference pass are 4.5x and 4.2x slower without this (``bench/denormals.py``,
    docs/PERFORMANCE.md). Values that small change no output at float32 precision.
    """
    return bool(torch.set_flush_denormal(True))


_THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def huge_pages_for_tensors(enable: bool = True) -> bool:
    """Back CPU tensors of 2 MiB and more with transparent huge pages (Linux), for
    inference; returns whether they will be. ``enable=False`` keeps them off.

    PyTorch's CPU allocator asks for huge pages (``madvise``) when the environment
    variable ``THP_MEM_ALLOC_ENABLE`` is 1, which it reads once, at the process's first
    CPU tensor: this must run before that (:func:`resolve_device` calls it; ``n3 train``
    calls it with ``enable=False`` before that). Every large activation is a fresh
    allocation, and with 4 KiB pages the kernel faults each in page by page (65,536 faults
    for one 256 MB activation of a 1024x1024 image): with huge pages N3Net runs about 11 %
    faster at 1024^2, at the same peak memory. Not for training: with freed memory kept in the heap
    (:func:`keep_freed_host_memory`) there are no faults left to save, and huge pages
    raised the peak RSS of a training step by half (docs/PERFORMANCE.md, "Huge pages").
    A value the user set is left as it is.
    """
    if enable and platform.system() == "Linux":
        try:
            available = "[never]" not in _THP_SETTING.read_text()
        except OSError:
            available = False
        if available:
            os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
            return os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "0")
    return os.environ["THP_MEM_ALLOC_ENABLE"] == "1"


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)


def keep_freed_host_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse (process-wide); False where unsupported.

    By default glibc serves every large block (here: activations of tens of MB) with a
    fresh ``mmap`` and returns it on free, so a training step on the CPU page-faults all of
    its activations in again: 2.2 million minor faults and 5 of 22 s of system time per
    step of the paper-size N3Net at batch 32, one thread (``bench/train_step.py``,
    docs/PERFORMANCE.md). With mmap off and a 2 GiB trim threshold, freed blocks stay in
    the heap and the next step reuses them: no faults, 22 -> 17 s, at the price of a
    higher peak RSS (3.5 -> 4.1 GB there: the heap fragments where mmap would not).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


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
