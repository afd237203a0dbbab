"""The store: atomic save, verified load, catalogue and the --model auto rule."""

from __future__ import annotations

import json

import pytest
import torch

from n3cli.errors import ModelNotFoundError, WeightsError
from n3cli.models import N3Net, N3NetConfig, descriptor_for, registry
from n3cli.weights import available_models, choose_model, load_model, save_model, store_dir
from n3cli.weights import store as store_mod

TINY = N3NetConfig(features=8, depth=3, embed_features=8, embed_depth=2, n3_channels=4, k=2,
                   window=5)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty store, and a registry snapshot so that dynamic registrations do not leak."""
    monkeypatch.setenv("N3_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(store_mod, "bundled_dir", lambda: tmp_path / "bundled")
    return tmp_path / "home"


def _tiny(seed: int = 0, cfg: N3NetConfig = TINY) -> N3Net:
    torch.manual_seed(seed)
    net = N3Net(cfg)
    for m in net.modules():  # non-default BN statistics, so that buffers must round-trip too
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _save(name: str, cfg: N3NetConfig = TINY, **desc) -> N3Net:
    net = _tiny(cfg=cfg)
    save_model(store_dir(), name, net, cfg, descriptor_for(cfg, **desc), summary="test")
    return net


def test_store_dir_follows_n3_home(home):
    assert store_dir() == home and home.is_dir()


def test_round_trip_gives_identical_outputs(home):
    net = _save("tiny-s25", sigma=25.0)
    loaded, spec = load_model("tiny-s25")
    assert not loaded.training and spec.config == TINY and spec.descriptor.sigma == 25.0
    x = torch.rand(1, 1, 40, 45)
    with torch.inference_mode():
        assert torch.equal(net(x), loaded(x))
    meta = json.loads((home / "tiny-s25.json").read_text())
    assert meta["sha256"] == store_mod.sha256_file(home / "tiny-s25.safetensors")
    assert sorted(p.name for p in home.iterdir()) == ["tiny-s25.json", "tiny-s25.safetensors"]


def test_tampered_weights_fail_checksum(home):
    _save("tiny")
    path = home / "tiny.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="checksum"):
        load_model("tiny")


def test_shape_mismatch_is_a_weights_error(home):
    _save("tiny")
    js = home / "tiny.json"
    meta = json.loads(js.read_text())
    meta["config"]["features"] = 16  # JSON now describes another architecture
    js.write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="do not fit"):
        load_model("tiny")


def test_failed_save_leaves_nothing(home, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod.json, "dump", boom)
    with pytest.raises(WeightsError, match="cannot write"):
        _save("tiny")
    assert list(home.iterdir()) == []


def test_unknown_and_missing_models(home):
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        load_model("no-such-model")
    with pytest.raises(ModelNotFoundError, match="n3 weights fetch paper"):
        load_model("n3net-paper-s25")


def test_available_models_lists_installed_and_not(home):
    _save("tiny-extra", sigma=15.0)
    rows = {m.name: m for m in available_models()}
    assert rows["tiny-extra"].installed and rows["tiny-extra"].where == "store"
    assert rows["tiny-extra"].descriptor.sigma == 15.0
    assert rows["tiny-extra"].params == sum(p.numel() for p in N3Net(TINY).parameters())
    paper = rows["n3net-paper-s25"]
    assert not paper.installed and paper.where == "not installed"
    assert "no redistribution" in paper.licence


def test_choose_model_rule(home):
    with pytest.raises(ModelNotFoundError, match="fetch paper"):
        choose_model(25, color=False)
    _save("n3net-paper-s25", sigma=25.0)
    assert choose_model(25, color=False) == "n3net-paper-s25"
    assert choose_model(25, color=True) == "n3net-paper-s25"  # gray-on-colour interim
    with pytest.raises(ModelNotFoundError):
        choose_model(30, color=False)
    blind = N3NetConfig(**{**TINY.to_dict(), "in_channels": 2})
    _save("n3net-blind", cfg=blind, sigma_range=(0.0, 75.0))
    assert choose_model(30, color=False) == "n3net-blind"
    assert choose_model(30, color=True) == "n3net-blind"  # fallback to the other kind
    assert choose_model(None, color=False) == "n3net-blind"
    assert choose_model(25, color=False) == "n3net-paper-s25"
    color = N3NetConfig(**{**TINY.to_dict(), "image_channels": 3, "in_channels": 4,
                           "out_channels": 3})
    _save("n3net-blind-color", cfg=color, sigma_range=(0.0, 75.0))
    assert choose_model(25, color=True) == "n3net-blind-color"
    assert choose_model(25, color=False) == "n3net-paper-s25"


def test_bundled_models_are_listed_and_win_over_the_store(home, tmp_path):
    net = _tiny(seed=1)
    save_model(tmp_path / "bundled", "tiny", net, TINY, descriptor_for(TINY, sigma=10.0))
    _save("tiny", sigma=20.0)  # a store copy of the same name is shadowed
    rows = {m.name: m for m in available_models()}
    assert rows["tiny"].where == "bundled" and rows["tiny"].descriptor.sigma == 10.0
    loaded, spec = load_model("tiny")
    assert spec.descriptor.sigma == 10.0
    x = torch.rand(1, 1, 40, 40)
    with torch.inference_mode():
        assert torch.equal(loaded(x), net(x))


def test_geometry_is_derived_from_the_architecture_not_the_file(tmp_path):
    """A JSON written before the fix says min_size 40 for n3net-blind; its 7x7 window of
    stride 5 on a 2x unshuffled grid needs 80 input pixels, and that is what the
    descriptor says, whatever the file holds."""
    import json
    import shutil

    from n3cli.weights.store import bundled_dir, read_entry

    meta = json.loads((bundled_dir() / "n3net-blind.json").read_text())
    meta["descriptor"]["min_size"] = 40  # the stale value older files carry
    (tmp_path / "n3net-blind.json").write_text(json.dumps(meta))
    shutil.copy(bundled_dir() / "n3net-blind.safetensors", tmp_path / "n3net-blind.safetensors")
    entry = read_entry(tmp_path / "n3net-blind.json", "bundled")
    assert entry.meta["descriptor"]["min_size"] == 40
    assert entry.spec.descriptor.min_size == 80 and entry.spec.arch == "n3net"
    assert entry.spec.descriptor.sigma_range == (0.0, 75.0)  # task fields come from the file


def test_a_broken_model_file_is_named_not_unknown(home):
    home.mkdir(parents=True)
    (home / "myblind.json").write_text("{bad")
    with pytest.raises(ModelNotFoundError, match="'myblind' is installed but broken: unreadable model description .*myblind.json"):
        load_model("myblind")
    with pytest.raises(ModelNotFoundError, match="unknown model 'other'"):
        load_model("other")


def test_weights_sha256_and_verify_weights_file(home):
    _save("tiny-s25", sigma=25.0)
    entry = store_mod.installed()["tiny-s25"]
    assert store_mod.weights_sha256("tiny-s25") == store_mod.sha256_file(home / "tiny-s25.safetensors")
    assert store_mod.weights_sha256("bicubic") is None
    store_mod.verify_weights_file(entry)  # intact: no error
    with open(home / "tiny-s25.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(WeightsError, match="fail their checksum"):
        store_mod.verify_weights_file(entry)
    (home / "tiny-s25.safetensors").unlink()
    with pytest.raises(WeightsError, match="missing"):
        store_mod.verify_weights_file(entry)
