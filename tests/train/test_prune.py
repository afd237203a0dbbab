"""`n3 prune`: a narrower model refit to a trained one by least squares."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_sr_train import TINY_SR
from train_helpers import make_images

from n3cli.errors import UsageError
from n3cli.models.arch import get_arch
from n3cli.train.config import config_from_dict
from n3cli.train.prune import prune
from n3cli.weights.store import read_entry, save_model


def _config(train_dir, **model):
    raw = json.loads(json.dumps(TINY_SR))
    raw["data"]["train"] = [str(train_dir)]
    raw["data"]["crop"] = 48
    raw["validation"]["folder"] = ""
    raw["model"].update({"features": 12, "depth": 4, **model})
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A 12-feature SR model with random weights, saved like a trained one."""
    root = tmp_path_factory.mktemp("prune")
    train_dir = make_images(root / "train", count=4, size=(60, 66), color=True)
    cfg = _config(train_dir)
    torch.manual_seed(3)
    net = get_arch(cfg.arch).build(cfg.model)
    for p in net.parameters():  # the tails start near zero: make them matter
        p.data.add_(0.05 * torch.randn_like(p))
    desc = get_arch(cfg.arch).describe(cfg.model)
    return save_model(root / "teacher", "tiny-sr", net, cfg.model, desc, arch=cfg.arch), train_dir


def _image(train_dir, size=24):
    """A low-resolution input like the calibration crops (the fits hold on such images)."""
    import numpy as np
    from PIL import Image

    img = Image.open(sorted(train_dir.iterdir())[-1]).convert("L").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None, None]


def _load(json_path):
    entry = read_entry(json_path, "file")
    net = entry.spec.build()
    net.load_state_dict(load_file(str(entry.weights_path)), strict=True)
    return net.eval()


def test_same_width_reproduces_the_teacher(teacher, tmp_path):
    js, train_dir = teacher
    report = prune(_config(train_dir), js, tmp_path, crops=8, ridge=1e-9)
    assert max(report.stage_errors) < 1e-3
    x = _image(train_dir)
    with torch.no_grad():
        torch.testing.assert_close(_load(report.json_path)(x, 2), _load(js)(x, 2), atol=1e-3, rtol=0)


def test_narrower_model_is_fit_to_the_teacher(teacher, tmp_path):
    js, train_dir = teacher
    cfg = _config(train_dir, features=6, window=5)
    report = prune(cfg, js, tmp_path, crops=8)
    student = _load(report.json_path)
    assert student.body.blocks[0].conv1.out_channels == 6 and student.config.window == 5
    assert json.loads(report.json_path.read_text())["pruned_from"]["model"] == "tiny-sr"
    fresh = get_arch(cfg.arch).build(cfg.model).eval()
    t = _load(js)
    x = _image(train_dir)
    with torch.no_grad():
        ref = t(x, 3)
        fit = (student(x, 3) - ref).pow(2).mean()
        unfit = (fresh(x, 3) - ref).pow(2).mean()
    assert fit < 0.5 * unfit


def test_refuses_what_it_cannot_refit(teacher, tmp_path):
    js, train_dir = teacher
    with pytest.raises(UsageError, match="changes shape"):
        prune(_config(train_dir, tail_channels=2), js, tmp_path, crops=4)
    with pytest.raises(UsageError, match="depth"):
        prune(_config(train_dir, features=6, depth=3), js, tmp_path, crops=4)
    with pytest.raises(UsageError, match="BatchNorm"):
        prune(_config(train_dir, batchnorm=True), js, tmp_path, crops=4)
    with pytest.raises(UsageError, match="narrower than its teacher"):
        prune(_config(train_dir, features=24), js, tmp_path, crops=4)
    report = prune(_config(train_dir, features=6), js, tmp_path, crops=4)
    before = report.json_path.read_bytes()
    with pytest.raises(UsageError, match="does not replace a model"):
        prune(_config(train_dir, features=5), js, tmp_path, crops=4)
    assert report.json_path.read_bytes() == before


def _toml(train_dir) -> str:
    return f"""name = "tiny-sr"
seed = 1
[model]
arch = "n3net-sr"
layout = "lr"
scales = [2, 3]
features = 12
depth = 4
embed_features = 8
k = 2
window = 3
tail_channels = 4
[task]
kind = "sr"
scales = [2, 3]
[data]
train = ["{train_dir}"]
color = "y"
crop = 48
[optim]
batch_size = 4
[schedule]
kind = "exp"
steps = 2
bn_steps = 0
"""


def test_cli_prunes_then_train_starts_from_it(teacher, tmp_path, run):
    js, train_dir = teacher
    config = tmp_path / "tiny.toml"
    config.write_text(_toml(train_dir))
    r = run("prune", "--config", config, "--from", js, "--out", tmp_path / "p", "--crops", 4,
            "--set", "model.features=6")
    assert r.exit_code == 0, r.output
    weights = tmp_path / "p" / "tiny-sr.safetensors"
    assert r.stdout.strip() == str(weights) and "relative RMS error" in r.stderr
    r = run("train", "--config", config, "--init", weights, "--set", "model.features=6",
            "--set", "validation.images=0", "--out", tmp_path / "run", "-q")
    assert r.exit_code == 0, r.output
    r = run("prune", "--config", config, "--from", js.with_suffix(".safetensors"), "--out", tmp_path / "q",
            "--set", "model.depth=3")
    assert r.exit_code != 0 and r.stderr.startswith("n3: error:") and "Traceback" not in r.output
    assert "depth" in r.stderr  # the .safetensors path found its JSON; the refusal is the depth
    (tmp_path / "afile").write_text("x")
    r = run("prune", "--config", config, "--from", tmp_path / "afile", "--out", tmp_path / "r")
    assert r.exit_code == 2 and "not a model file" in r.stderr
