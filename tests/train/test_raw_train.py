"""`n3 train` of a raw model end to end: task raw-pg, arch n3net-raw, export, load back,
and the batches follow the paper's synthesis."""

from __future__ import annotations

import json

import torch
from train_helpers import make_images

from n3cli.train.config import TaskConfig, config_from_dict
from n3cli.train.loop import TrainOptions, train
from n3cli.train.tasks import make_task

TINY_RAW = {
    "name": "tiny-raw", "seed": 1,
    "model": {"arch": "n3net-raw", "image_channels": 1, "in_channels": 3, "out_channels": 1,
              "features": 8, "depth": 3, "embed_features": 8, "k": 2, "window": 3},
    "task": {"kind": "raw-pg"},
    "data": {"color": "gray", "crop": 32, "augment": "dihedral", "sweeps": 2, "holdout": 1},
    "validation": {"images": 1, "sigmas": [-3.0, -2.0], "every_steps": 0},
    "optim": {"batch_size": 4, "lr": 1e-3},
    "schedule": {"kind": "exp", "steps": 4, "bn_steps": 1},
    "checkpoint": {"every_steps": 0, "every_minutes": 0},
    "runtime": {"log_every": 2},
}


def test_raw_batches_are_plane_a_b_with_the_tone_mapped_target():
    task = make_task(TaskConfig(kind="raw-pg"))
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(64, 1, 16, 16)
    inp, target, _ = task.make_batch(clean, gen)
    assert inp.shape == (64, 3, 16, 16) and target.shape == clean.shape
    a, b = inp[:, 1, 0, 0], inp[:, 2, 0, 0]
    assert torch.all(inp[:, 1] == a.view(-1, 1, 1)) and torch.all(inp[:, 2] == b.view(-1, 1, 1))
    assert 1e-4 <= a.min() and a.max() <= 1e-1
    ratio = torch.log10(b / a)
    assert ratio.min() >= -3.6 - 1e-4 and ratio.max() <= -1.0 + 1e-4
    assert torch.all(target <= clean + 1e-6)  # x^g * s with g > 1, s <= 1 only darkens
    assert inp[:, 0].min() >= 0 and inp[:, 0].max() <= 1  # clipped like a raw file


def test_raw_training_exports_a_loadable_model(tmp_path):
    train_dir = make_images(tmp_path / "train", count=5, size=(48, 54))
    raw = json.loads(json.dumps(TINY_RAW))
    raw["data"]["train"] = [str(train_dir)]
    cfg = config_from_dict(raw)
    result = train(cfg, TrainOptions(out=tmp_path / "run", device="cpu", progress=False))
    assert result.steps_done == 5 and set(result.val) >= {"s-3", "s-2"}
    meta = json.loads((tmp_path / "run" / "tiny-raw.json").read_text())
    assert meta["arch"] == "n3net-raw"
    assert meta["descriptor"]["packing"] == "bayer" and meta["descriptor"]["conditioning"] == ["a", "b"]
    from safetensors.torch import load_file

    from n3cli.weights.store import read_entry

    entry = read_entry(tmp_path / "run" / "tiny-raw.json", "store")
    net = entry.spec.build()
    net.load_state_dict(load_file(str(tmp_path / "run" / "tiny-raw.safetensors")), strict=True)
    assert net.eval()(torch.rand(1, 3, 24, 24)).shape == (1, 1, 24, 24)


def test_tone_prob_leaves_a_share_of_the_crops_at_their_own_levels():
    clean = torch.rand(200, 1, 8, 8) * 0.9 + 0.05
    gen = torch.Generator().manual_seed(2)
    _, target, _ = make_task(TaskConfig(kind="raw-pg", tone_prob=0.5)).make_batch(clean, gen)
    kept = (target == clean).flatten(1).all(1)
    assert 60 < int(kept.sum()) < 140  # about half untoned, the rest darkened
    assert torch.all(target[~kept] < clean[~kept])
    _, paper, _ = make_task(TaskConfig(kind="raw-pg")).make_batch(clean, torch.Generator().manual_seed(2))
    assert not (paper == clean).flatten(1).all(1).any()  # the paper's synthesis tones every crop


def test_focus_oversamples_a_range_of_log10_a():
    clean = torch.full((400, 1, 4, 4), 0.5)
    task = make_task(TaskConfig(kind="raw-pg", tone_prob=0.0, focus_range=(-4.0, -3.0), focus_prob=0.6))
    inp, _, _ = task.make_batch(clean, torch.Generator().manual_seed(5))
    la = torch.log10(inp[:, 1, 0, 0].double())
    assert (la >= -4 - 1e-6).all() and (la <= -1 + 1e-6).all()
    share = float((la < -3).double().mean())
    assert 0.6 < share < 0.8  # 0.6 + 0.4 * 1/3 = 0.73; the paper's range alone gives 1/3
    plain = make_task(TaskConfig(kind="raw-pg", tone_prob=0.0)).make_batch(clean, torch.Generator().manual_seed(5))
    assert float((torch.log10(plain[0][:, 1, 0, 0].double()) < -3).double().mean()) < 0.45
