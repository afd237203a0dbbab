"""Device selection: the CPU path turns on flushing of denormal floats (a trained N3Net's
denormals made training steps 4x slower on x86)."""

from __future__ import annotations

import pytest
import torch

from n3cli.engine.device import flush_denormals, resolve_device
from n3cli.errors import UsageError


def test_cpu_flushes_denormals():
    if not flush_denormals():
        pytest.skip("this CPU cannot flush denormals (no SSE3)")
    torch.set_flush_denormal(False)
    try:
        tiny = torch.tensor([1e-30]) * torch.tensor([1e-10])
        assert tiny.item() != 0.0  # 1e-40 is a float32 denormal
        assert resolve_device("cpu").type == "cpu"
        assert (torch.tensor([1e-30]) * torch.tensor([1e-10])).item() == 0.0
    finally:
        flush_denormals()


def test_unknown_device_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device("tpu:0")


def test_precision_advice_names_the_slow_cpu_precisions(monkeypatch):
    import torch

    from n3cli.engine import precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision.precision_advice("fp32", cpu) is None and precision.precision_advice("fp16", cuda) is None
    assert "fp16 is emulated on the CPU" in precision.precision_advice("fp16", cpu)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert "bf16 is emulated" in precision.precision_advice("bf16", cpu)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.precision_advice("bf16", cpu) is None
