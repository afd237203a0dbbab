"""`n3 train` of an SR model end to end: task sr, arch n3net-sr, export, load back."""

from __future__ import annotations

import json

import torch
from train_helpers import make_images

from n3cli.train.config import config_from_dict
from n3cli.train.loop import TrainOptions, train

TINY_SR = {
    "name": "tiny-sr", "seed": 1,
    "model": {"arch": "n3net-sr", "layout": "lr", "scales": [2, 3], "features": 8, "depth": 3,
              "embed_features": 8, "k": 2, "window": 3, "tail_channels": 4},
    "task": {"kind": "sr", "scales": [2, 3]},
    "data": {"color": "y", "crop": 36, "augment": "dihedral", "sweeps": 2},
    "validation": {"images": 1, "sigmas": [2, 3], "every_steps": 0},
    "optim": {"batch_size": 4, "lr": 1e-3, "loss": "l1", "loss_scale": 1.0, "weight_decay": 0.0},
    "schedule": {"kind": "exp", "steps": 6, "bn_steps": 0},
    "checkpoint": {"every_steps": 0, "every_minutes": 0},
    "runtime": {"log_every": 2},
}


def test_sr_training_exports_a_loadable_model(tmp_path, monkeypatch):
    train_dir = make_images(tmp_path / "train", count=4, size=(48, 54), color=True)
    val_dir = make_images(tmp_path / "val", count=1, size=(60, 60), color=True, seed=9)
    raw = json.loads(json.dumps(TINY_SR))
    raw["data"]["train"] = [str(train_dir)]
    raw["validation"]["folder"] = str(val_dir)
    cfg = config_from_dict(raw)
    assert cfg.arch == "n3net-sr"
    result = train(cfg, TrainOptions(out=tmp_path / "run", device="cpu", progress=False))
    assert result.steps_done == 6 and set(result.val) >= {"s2", "s3"}
    meta = json.loads((tmp_path / "run" / "tiny-sr.json").read_text())
    assert meta["arch"] == "n3net-sr" and meta["descriptor"]["task"] == "sr"
    monkeypatch.setenv("N3_HOME", str(tmp_path / "run"))
    from n3cli.weights.store import read_entry

    entry = read_entry(tmp_path / "run" / "tiny-sr.json", "store")
    net = entry.spec.build()
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(tmp_path / "run" / "tiny-sr.safetensors")), strict=True)
    assert net.eval()(torch.rand(1, 1, 12, 12), 3).shape == (1, 1, 36, 36)
