"""Training configs: the bundled files, the paper's protocol, validation of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from n3cli.data.folder import load_training_bank
from n3cli.errors import UsageError
from n3cli.train.config import load_config, parse_override, with_num_images
from n3cli.train.schedule import lr_at

from train_helpers import REPO, make_images, write_config

CONFIGS = sorted((REPO / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_repo_configs_load(path):
    cfg = load_config(path)
    assert cfg.name and cfg.data.train
    assert all(not p.rstrip("/").endswith("val") for p in cfg.data.train)


def test_paper_protocol_s25():
    cfg = with_num_images(load_config(REPO / "configs/paper-gauss-s25.toml"), 400)
    assert cfg.task.kind == "gauss" and cfg.task.sigma == 25
    assert cfg.data.color == "gray" and cfg.data.augment == "vflip" and cfg.data.sweeps == 128
    assert cfg.optim.lr == 1e-3 and cfg.optim.weight_decay == 1e-4 and cfg.optim.loss_scale == 0.125
    assert cfg.steps_per_epoch == 1600 and cfg.grad_steps == 51 * 1600 and cfg.total_steps == 52 * 1600
    assert lr_at(cfg, 0) == 1e-3 and lr_at(cfg, 1599) == 1e-3
    assert lr_at(cfg, 1600) == pytest.approx(1e-3 * 10 ** (-3 / 50))
    assert lr_at(cfg, 50 * 1600) == pytest.approx(1e-6)
    assert lr_at(cfg, 51 * 1600) == 0.0
    assert [Path(p).name for p in cfg.data.train] == ["train", "test"]


@pytest.mark.parametrize("name,channels", [("blind-gray", 1), ("blind-color", 3)])
def test_bundled_configs(name, channels):
    cfg = load_config(REPO / f"configs/{name}.toml", ["schedule.steps=1000"])
    m = cfg.model
    assert cfg.optim.batch_size == 64 and cfg.data.crop == 80  # the GPU recipes (H200-measured)
    assert not cfg.runtime.channels_last and cfg.optim.ema == 0.999 and cfg.task.real_prob == 0.3
    assert cfg.validation.bn_batches == 16
    assert (m.image_channels, m.in_channels, m.out_channels) == (channels, channels + 1, channels)
    assert (m.features, m.depth, m.k) == (64, 6, 7)
    assert cfg.task.kind == "blind-gauss" and tuple(cfg.task.sigma_range) == (0.0, 75.0)
    assert lr_at(cfg, 0) == 1e-3 and lr_at(cfg, 999) == pytest.approx(1e-6)
    assert lr_at(cfg, 500) == pytest.approx(1e-3 * (1e-3) ** (500 / 999))
    assert lr_at(cfg, 1000) == 0.0 and cfg.total_steps == 1000 + cfg.schedule.bn_steps


def test_overrides_and_errors(tmp_path):
    cfg_path = write_config(tmp_path / "c.toml", tmp_path)
    cfg = load_config(cfg_path, ["schedule.steps=9", "task.sigma=50", "data.train=[\"x\"]"])
    assert cfg.schedule.steps == 9 and cfg.task.sigma == 50
    assert cfg.data.train == (str(Path.cwd() / "x"),)  # relative to the working directory, made absolute
    assert parse_override("runtime.amp=bf16") == ("runtime", "amp", "bf16")
    assert parse_override(" optim . lr = 1e-4") == ("optim", "lr", 1e-4)
    assert load_config(cfg_path, ["seed=3"]).seed == 3  # top-level keys too
    with pytest.raises(UsageError, match="unknown key"):
        load_config(cfg_path, ["optim.lrr=1"])
    with pytest.raises(UsageError, match="bad --set"):
        load_config(cfg_path, ["steps=3"])
    with pytest.raises(UsageError, match="in_channels"):
        load_config(cfg_path, ["task.kind=\"blind-gauss\""])
    with pytest.raises(UsageError, match="not found"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("name = [")
    with pytest.raises(UsageError, match="cannot read config"):
        load_config(tmp_path / "bad.toml")
    # Types and the model name are checked before any training, not hours later.
    for bad, message in [("optim.lr=abc", "lr must be a number, not 'abc'"),
                         ("schedule.steps=1.5", "steps must be a whole number"),
                         ("runtime.channels_last=1", "must be true or false"),
                         ("data.crop=\"80\"", "crop must be a whole number"),
                         ("validation.sigmas=[\"a\"]", "sigmas must be a number, not 'a'"),
                         ("task.sigma_range=[5.0]", "sigma_range must be a pair"),
                         ("data.train=[1, 2]", "train must be a string"),
                         ("optim.betas=[1.5, 2]", "optim.betas"), ("optim.weight_decay=-1", "weight_decay"),
                         ("data.limit=-2", "must not be negative"), ("validation.images=-1", "must not be negative"),
                         ("validation.sigmas=[]", "validation.sigmas is empty"), ("task.sigma=-25", "bad task.sigma"),
                         ("validation.dataset=\"set12\"", "'set12' is not a validation set"),
                         ("seed=1.5", "seed must be a whole number"), ("seed.x=1", "top-level key, not a section"),
                         ("steps=3", "bad --set"),
                         # [model] too: 8.5 features crashed in torch, "False" was a true string
                         ("model.features=8.5", r"\[model\] features must be a whole number, not 8.5"),
                         ("model.window=4.0", "window must be a whole number"),
                         ("model.features=\"8\"", "features must be a whole number"),
                         ("model.batchnorm=False", "batchnorm must be true or false, not 'False'"),
                         # ranges that trained "successfully" before
                         ("schedule.lr_end=inf", "lr_end must be positive"),
                         ("optim.loss_scale=-1", "bad optim.loss_scale"),
                         ("optim.loss=\"mse\"", "unknown optim.loss 'mse'"),
                         ("validation.sigmas=[-5]", "bad validation.sigmas"),
                         ("validation.sigmas=[1000]", "bad validation.sigmas"),
                         ("checkpoint.every_steps=-1", "must not be negative")]:
        with pytest.raises(UsageError, match=message):
            load_config(cfg_path, [bad])
    assert load_config(cfg_path, ["optim.lr=1"]).optim.lr == 1.0  # an int where a float goes
    assert load_config(cfg_path, ["validation.dataset=\"val32\""]).validation.dataset == "val32"
    with pytest.raises(UsageError, match="folder and validation.dataset are both set"):
        load_config(cfg_path, ["validation.folder=\"v\"", "validation.dataset=\"val32\""])
    from n3cli.train.config import config_from_dict

    for raw, message in (({"name": "x", "task": 5}, r"\[task\] must be a table"),
                         ({"name": "x", "model": "x"}, r"\[model\] must be a table"),
                         ({"name": 5}, "name must be a string")):
        with pytest.raises(UsageError, match=message):
            config_from_dict(raw)
    (tmp_path / "named.toml").write_text(cfg_path.read_text().replace('name = "', 'name = "../', 1))
    with pytest.raises(UsageError, match="config name: invalid model name"):
        load_config(tmp_path / "named.toml")


@pytest.mark.parametrize("name", ["val", "BSD68", "Set12", "Set5/HR", "Urban100/image_SRF_4"])
def test_test_set_folders_are_refused(tmp_path, name):
    folder = make_images(tmp_path / name, count=1)
    with pytest.raises(UsageError, match="test set"):
        load_training_bank([folder], "gray", 40)
    (tmp_path / "mydata").symlink_to(folder)  # reported by what it is, not by the link's name
    with pytest.raises(UsageError, match="test set"):
        load_training_bank([tmp_path / "mydata"], "gray", 40)


def test_16_bit_training_images_are_scaled_and_float_ones_refused(tmp_path):
    from PIL import Image

    folder = tmp_path / "wide"
    folder.mkdir()
    ramp = np.tile(np.linspace(0, 65535, 48), (48, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "a.png")  # 16-bit gray PNG (mode I;16)
    bank = load_training_bank([folder], "gray", 40)
    np.testing.assert_array_equal(bank.image(0)[0].numpy(), np.rint(ramp / 257.0).astype(np.uint8))
    Image.fromarray(ramp.astype(np.float32) / 65535).save(folder / "b.tif")  # mode F
    with pytest.raises(UsageError, match="float samples"):
        load_training_bank([folder], "gray", 40)


def test_small_images_and_empty_folders_are_errors(tmp_path):
    small = make_images(tmp_path / "small", count=1, size=(30, 50))
    with pytest.raises(UsageError, match="smaller than"):
        load_training_bank([small], "gray", 40)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no images"):
        load_training_bank([tmp_path / "empty"], "gray", 40)


def test_gray_conversion_is_the_paper_formula(tmp_path):
    from PIL import Image

    folder = make_images(tmp_path / "rgb", count=1, color=True)
    bank = load_training_bank([folder], "gray", 40)
    with Image.open(folder / "img00.png") as img:
        want = img.convert("L", (0.2989, 0.5870, 0.1140, 0))
    import numpy as np

    assert np.array_equal(bank.image(0)[0].numpy(), np.asarray(want))


def test_holdout_is_spread_disjoint_and_kept_out_of_the_bank(tmp_path):
    from n3cli.data.folder import training_files

    folder = make_images(tmp_path / "imgs", count=10)
    train, held = training_files([folder], holdout=3)
    assert len(train) == 7 and len(held) == 3 and not set(train) & set(held)
    names = [p.name for p in sorted(folder.iterdir())]
    assert [names.index(p.name) for p in held] == [1, 4, 8]  # evenly spread, not the last three
    bank = load_training_bank([folder], "gray", 40, holdout=3)
    assert sorted(bank.names) == sorted(p.name for p in train)
    with pytest.raises(UsageError, match="leaves no training image"):
        training_files([folder], holdout=10)


def test_holdout_does_not_change_the_identity_of_old_checkpoints(tmp_path):
    from n3cli.train.config import identity

    cfg = load_config(REPO / "configs/cpu-blind-gray.toml")
    assert "holdout" not in identity(cfg)["data"]
    assert identity(load_config(REPO / "configs/cpu-blind-gray.toml", ["data.holdout=5"]))["data"]["holdout"] == 5


def test_real_prob_is_checked_and_absent_from_old_identities():
    from n3cli.train.config import identity

    path = REPO / "configs/cpu-blind-gray.toml"
    assert "real_prob" not in identity(load_config(path))["task"]
    cfg = load_config(path, ["task.real_prob=0.5"])
    assert cfg.task.real_prob == 0.5 and identity(cfg)["task"]["real_prob"] == 0.5
    with pytest.raises(UsageError, match="real_prob"):
        load_config(path, ["task.real_prob=1.5"])


def test_tone_prob_is_checked_and_absent_from_old_identities():
    from n3cli.train.config import identity

    path = REPO / "configs/cpu-raw.toml"
    assert "tone_prob" not in identity(load_config(path))["task"]  # old raw checkpoints resume
    cfg = load_config(path, ["task.tone_prob=0.5"])
    assert cfg.task.tone_prob == 0.5 and identity(cfg)["task"]["tone_prob"] == 0.5
    with pytest.raises(UsageError, match="tone_prob"):
        load_config(path, ["task.tone_prob=1.5"])


@pytest.mark.parametrize("config, bad", [
    ("cpu-raw.toml", "task.focus_range=[-5,-3]"),       # outside the paper's log10 a range
    ("cpu-raw.toml", "task.focus_range=[-2,-3]"),       # decreasing
    ("cpu-blind-gray.toml", "task.focus_range=[30,10]"),
    ("cpu-blind-gray.toml", "task.focus_prob=1.2"),
])
def test_focus_settings_are_checked(config, bad):
    with pytest.raises(UsageError, match="focus"):
        load_config(REPO / "configs" / config, [bad])
    ok = "task.focus_range=[-4,-2.5]" if config == "cpu-raw.toml" else "task.focus_range=[10,30]"
    assert load_config(REPO / "configs" / config, [ok, "task.focus_prob=0.4"]).task.focus_prob == 0.4


@pytest.mark.parametrize("config, crop, message", [
    ("blind-gray.toml", 8, r"data.crop 8 is smaller than the model's N3 patch \(10px\)"),
    ("cpu-blind-gray.toml", 16, r"data.crop 16 \(/2 in the network: 8\) is smaller than the model's N3 patch"),
    ("cpu-sr.toml", 36, r"data.crop 36 \(/4 in the network: 9\) is smaller than the model's N3 patch"),
])
def test_crops_smaller_than_a_patch_are_refused(config, crop, message):
    # Such a run trained without error, its N3 blocks never seeing a neighbour.
    with pytest.raises(UsageError, match=message):
        load_config(REPO / "configs" / config, [f"data.crop={crop}"])
    assert load_config(REPO / "configs" / config, [f"data.crop={crop + 12 * 4}"]).data.crop == crop + 48
