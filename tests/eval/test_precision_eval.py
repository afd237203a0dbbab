"""`n3 eval --precision`: the cost of half-precision convolutions, measured by the protocol
itself; the result says which precision it was."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from n3cli.engine.precision import resolve_precision
from n3cli.errors import UsageError


def _cpu_has(name: str) -> bool:
    try:
        resolve_precision(name, torch.device("cpu"))
        return True
    except UsageError:
        return False


@pytest.mark.skipif(not _cpu_has("bf16"), reason="this CPU runs no bf16 convolutions")
def test_eval_bf16_bundled_model_is_labelled_and_close(run, set12):
    args = ["eval", "--dataset", "set12", "--model", "n3net-blind", "--sigma", "25", "--limit", "1",
            "--data-dir", set12, "--device", "cpu", "--json", "-"]
    plain = json.loads(run(*args).stdout)
    r = run(*args, "--precision", "bf16")
    assert r.exit_code == 0, r.stderr
    half = json.loads(r.stdout)
    assert plain["precision"] == "fp32" and half["precision"] == "bf16"
    # Same noise, convolutions rounded to 8 mantissa bits: a different score, by little.
    assert half["mean_psnr"] != plain["mean_psnr"]
    assert abs(half["mean_psnr"] - plain["mean_psnr"]) < 0.1
    table = run(*args[:-2], "--precision", "bf16")
    assert table.exit_code == 0 and "n3net-blind bf16" in table.stdout


@pytest.mark.skipif(not _cpu_has("bf16"), reason="this CPU runs no bf16 convolutions")
def test_sr_adapter_takes_a_precision(tiny):
    from n3cli.eval.sr import model_upscaler
    from n3cli.weights import load_model

    dev = torch.device("cpu")
    lr = np.random.default_rng(0).random((30, 26, 1)).astype(np.float32)
    up32 = model_upscaler(*load_model("tiny-sr", dev, scale=2), dev)(lr, 2)
    up16 = model_upscaler(*load_model("tiny-sr", dev, scale=2), dev, precision="bf16")(lr, 2)
    assert up16.shape == up32.shape == (60, 52, 1) and up16.dtype == np.float32
    assert 0 < np.abs(up16 - up32).max() < 0.05


@pytest.mark.skipif(not _cpu_has("bf16"), reason="this CPU runs no bf16 convolutions")
def test_raw_adapter_takes_a_precision():
    from n3cli.eval.raw import model_raw_denoiser
    from n3cli.weights import load_model

    dev = torch.device("cpu")
    noisy = np.random.default_rng(1).random((40, 40, 1)).astype(np.float32)
    blind = load_model("n3net-blind", dev)
    d32 = model_raw_denoiser(*blind, dev)(noisy, 1e-3, 1e-5)
    d16 = model_raw_denoiser(*blind, dev, precision="bf16")(noisy, 1e-3, 1e-5)
    assert 0 < np.abs(d16 - d32).max() < 0.05


def test_eval_refuses_a_precision_the_model_does_not_support(run, tiny, tmp_path, monkeypatch):
    from n3cli.engine import precision

    monkeypatch.setattr(precision, "_probe", lambda device, dtype: False)
    r = run("eval", "--dataset", "set12", "--model", "tiny-s25", "--data-dir", tmp_path,
            "--precision", "fp16")
    assert r.exit_code == 2 and "fp16 is not supported on cpu" in r.stderr and "Traceback" not in r.stderr
