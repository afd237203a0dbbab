"""`n3 train --init`: fine-tuning starts from a trained model's weights."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from n3cli.errors import UsageError
from n3cli.train import TrainOptions, load_config, train
from train_helpers import write_config


def _run(cfg_path, out, sets=(), **kw):
    return train(load_config(cfg_path, list(sets)), TrainOptions(out=out, device="cpu", progress=False, **kw))


def test_init_loads_the_weights_and_refuses_another_architecture(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    _run(cfg, tmp_path / "a")
    trained = tmp_path / "a" / "tiny.safetensors"
    # Zero steps from --init: the exported model is exactly the one we started from.
    _run(cfg, tmp_path / "b", max_steps=0, init=trained)
    a, b = load_file(trained), load_file(tmp_path / "b" / "tiny.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a if not k.endswith("num_batches_tracked"))
    # Without --init the same zero-step run exports a fresh initialisation instead.
    _run(cfg, tmp_path / "c", max_steps=0)
    c = load_file(tmp_path / "c" / "tiny.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a if k.endswith("conv1.weight"))
    with pytest.raises(UsageError, match="does not match"):
        _run(cfg, tmp_path / "d", sets=["model.features=12"], init=trained)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UsageError, match="cannot start from"):
        _run(cfg, tmp_path / "e", init=tmp_path / "junk.safetensors")


def test_cli_init_with_a_mismatched_file_is_a_usage_error(tmp_path, train_dir, run):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    _run(cfg, tmp_path / "a")
    r = run("train", "--config", cfg, "--init", tmp_path / "a" / "tiny.safetensors",
            "--set", "model.features=12", "--out", tmp_path / "d", "-q")
    assert r.exit_code == 2 and r.stderr.startswith("n3: error:") and "does not match" in r.stderr
    assert "Traceback" not in r.output and not (tmp_path / "d" / "tiny.safetensors").exists()


def test_several_inits_start_from_their_average_and_steps_0_only_measures_batchnorm(
        tmp_path, train_dir, run):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=2)
    _run(cfg, tmp_path / "a", ["seed=1"])
    _run(cfg, tmp_path / "b", ["seed=2"])
    a, b = (load_file(tmp_path / x / "tiny.safetensors") for x in "ab")
    conv = [k for k in a if k.endswith("conv1.weight")]
    assert conv and not all(torch.equal(a[k], b[k]) for k in conv)
    # A BatchNorm-only run (schedule.steps=0) from the two: every parameter is the mean,
    # the BatchNorm statistics are measured afresh for it (not the mean of the two).
    r = run("train", "--config", cfg, "--init", tmp_path / "a" / "tiny.safetensors",
            "--init", tmp_path / "b" / "tiny.safetensors", "--set", "schedule.steps=0",
            "--out", tmp_path / "soup", "-q")
    assert r.exit_code == 0, r.output
    soup = load_file(tmp_path / "soup" / "tiny.safetensors")
    for k in conv:
        assert torch.allclose(soup[k], (a[k] + b[k]) / 2, atol=1e-7)
    means = [k for k in a if k.endswith("running_mean") and not torch.equal(a[k], b[k])]
    assert means and not all(torch.allclose(soup[k], (a[k] + b[k]) / 2) for k in means)
    # Without a BatchNorm phase there is nothing for zero steps to do.
    with pytest.raises(UsageError, match="steps >= 1"):
        load_config(cfg, ["schedule.steps=0", "schedule.bn_steps=0"])
