"""Numeric precision of inference: fp32, fp16, bf16, and CPU threads.

Half precision applies to the convolutions only. The N3 kernels cast their inputs to
float32 and compute distances, softmax, log1mexp and aggregation there
(:mod:`n3cli.ops.cells`), and every BatchNorm stays float32: the distance BatchNorm's
running variance is as small as 5e-6, below fp16's normal range.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from n3cli.errors import UsageError
from n3cli.models.descriptor import ModelDescriptor

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _probe(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a 3x3 convolution runs in ``dtype`` on ``device``."""
    try:
        x = torch.zeros(1, 2, 4, 4, device=device, dtype=dtype)
        wt = torch.zeros(2, 2, 3, 3, device=device, dtype=dtype)
        torch.nn.functional.conv2d(x, wt, padding=1)
        return True
    except (RuntimeError, TypeError, NotImplementedError):
        return False


def resolve_precision(name: str, device: torch.device, desc: ModelDescriptor | None = None) -> torch.dtype:
    """Map ``fp32|fp16|bf16`` to a dtype the device and the model support, else UsageError."""
    key = (name or "fp32").strip().lower()
    if key not in PRECISIONS:
        raise UsageError(f"unknown precision '{name}'", "use fp32, fp16 or bf16")
    dtype = PRECISIONS[key]
    if dtype == torch.float32:
        return dtype
    if desc is not None and not desc.supports_half:
        raise UsageError(f"this model does not support {key}", "use --precision fp32")
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise UsageError(f"{key} is not supported by {torch.cuda.get_device_name(device)}",
                         "use --precision fp16 or fp32")
    if not _probe(device, dtype):
        raise UsageError(f"{key} is not supported on {device.type}", "use --precision fp32")
    return dtype


def precision_advice(name: str, device: torch.device) -> str | None:
    """A one-line note when ``name`` runs but is slow on ``device`` (None otherwise): CPUs
    emulate fp16 (4-5x slower than fp32 here), and bf16 too where they lack it in hardware."""
    key = (name or "fp32").strip().lower()
    if device.type != "cpu" or key == "fp32":
        return None
    if key == "fp16":
        return "--precision fp16 is emulated on the CPU and slower than fp32" + (
            " (bf16 is native on this CPU)" if cpu_has_native_bf16() else "")
    if key == "bf16" and not cpu_has_native_bf16():
        return "--precision bf16 is emulated on this CPU and slower than fp32"
    return None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic in hardware (AVX512-BF16 or AMX).

    Elsewhere oneDNN emulates bf16 and it is slower than float32, so this is what makes
    bf16 worth choosing automatically. False when PyTorch cannot tell.
    """
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(check() for check in checks if check is not None)
    except RuntimeError:
        return False


def resolve_autocast(name: str, device: torch.device) -> str:
    """Training's ``runtime.amp``: "none", "bf16", or "auto" -> bf16 on a CPU with native
    bf16 (1.5x the training steps of float32 there, docs/PERFORMANCE.md "bf16 autocast on
    the CPU"), none elsewhere (on an H200 float32 with channels_last was the fastest)."""
    if name == "auto":
        return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "none"
    return name


def cast_model(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Convert ``model`` to ``dtype`` in place, keeping every BatchNorm in float32."""
    model.to(dtype)
    if dtype != torch.float32:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.float()
    return model


def strict_fp32(device: torch.device, dtype: torch.dtype) -> None:
    """fp32 on CUDA means fp32: turn TF32 off for convolutions and matmuls.

    TF32 (cuDNN's default for convolutions) rounds inputs to 10 mantissa bits, so tiles
    and the whole image would differ by ~1e-3 and exact tiling would not be exact.
    """
    if device.type == "cuda" and dtype == torch.float32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


@contextmanager
def process_settings_kept() -> Iterator[None]:
    """Undo, on leaving, what an engine run sets for the whole process (the CPU thread
    count, CUDA's TF32 switches): a library call must not change its caller's torch."""
    saved = (torch.get_num_threads(), torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved[1], saved[2]


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for intra-op parallelism (None: leave torch's default)."""
    if threads is None:
        return
    if threads < 1:
        raise UsageError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(int(threads))
