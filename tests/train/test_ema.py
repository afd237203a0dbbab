"""The moving average of the weights: its arithmetic, and a run that exports it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from n3cli.errors import UsageError
from n3cli.train import TrainOptions, load_config, train
from n3cli.train.checkpoint import load_checkpoint
from n3cli.train.ema import WeightAverage
from train_helpers import write_config


def _run(cfg_path: Path, out: Path, sets=(), **kw):
    return train(load_config(cfg_path, list(sets)), TrainOptions(out=out, device="cpu", progress=False, **kw))


def test_average_follows_the_warm_up_formula_and_applied_restores():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    ema = WeightAverage(model, 0.5)
    expect = {k: v.detach().clone() for k, v in model.named_parameters()}
    for n in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        d = min(0.5, (1 + n) / (10 + n))
        expect = {k: d * expect[k] + (1 - d) * p.detach() for k, p in model.named_parameters()}
        ema.update(model)
    assert ema.updates == 4
    for k, v in ema.state_dict().items():
        assert torch.allclose(v, expect[k], atol=1e-6)
    live = model.weight.detach().clone()
    with ema.applied(model) as m:
        assert torch.allclose(m.weight, expect["weight"], atol=1e-6)
    assert torch.equal(model.weight, live)
    snap = ema.clone_state()
    ema.update(model)
    ema.restore(snap)
    assert ema.updates == 4 and torch.allclose(ema.shadow["weight"], expect["weight"], atol=1e-6)
    with pytest.raises(ValueError):
        WeightAverage(model, 1.0)


def test_run_exports_the_average_and_trains_as_without_it(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=8, bn=0, log_every=2)
    plain = _run(cfg, tmp_path / "plain")
    _run(cfg, tmp_path / "ema", ["optim.ema=0.9"])
    a = load_checkpoint(tmp_path / "plain" / "checkpoint.safetensors")
    b = load_checkpoint(tmp_path / "ema" / "checkpoint.safetensors")
    assert a["ema"] is None and b["ema"] is not None and b["extra"]["ema_updates"] == 8
    # The average only watches: the live weights are those of the run without it.
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    exported = load_file(tmp_path / "ema" / "tiny.safetensors")
    assert all(torch.equal(exported[k], b["ema"][k]) for k in b["ema"])
    assert any(not torch.equal(exported[k], b["model"][k]) for k in b["ema"])
    assert plain.steps_done == 8


def test_resume_with_average_is_bit_exact_and_may_turn_it_on(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=6, bn=0, log_every=1)
    _run(cfg, tmp_path / "full", ["optim.ema=0.8"])
    _run(cfg, tmp_path / "part", ["optim.ema=0.8"], max_steps=3)
    _run(cfg, tmp_path / "part", ["optim.ema=0.8"], resume=True)
    a = load_file(tmp_path / "full" / "tiny.safetensors")
    b = load_file(tmp_path / "part" / "tiny.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed average differs"
    # A run checkpointed without an average resumes with one (it starts from the weights).
    _run(cfg, tmp_path / "late", max_steps=3)
    _run(cfg, tmp_path / "late", ["optim.ema=0.8"], resume=True)
    assert load_checkpoint(tmp_path / "late" / "checkpoint.safetensors")["extra"]["ema_updates"] == 3


def test_batchnorm_phase_measures_statistics_for_the_average(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=5, bn=2)
    _run(cfg, tmp_path / "run", ["optim.ema=0.9"])
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    exported = load_file(tmp_path / "run" / "tiny.safetensors")
    # The phase copied the average into the model: exported == checkpointed model == average.
    assert all(torch.equal(exported[k], ck["model"][k]) for k in exported if k in ck["model"])
    assert all(torch.equal(ck["ema"][k], ck["model"][k]) for k in ck["ema"])


def test_bad_decay_is_refused(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir)
    with pytest.raises(UsageError, match="optim.ema"):
        load_config(cfg, ["optim.ema=1.5"])
