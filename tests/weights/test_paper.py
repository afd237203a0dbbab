"""Importing and fetching the paper's released checkpoints (read in place from ../shared)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pytest
import torch
from click.testing import CliRunner

from n3cli.cli.main import cli
from n3cli.errors import UsageError, WeightsError
from n3cli.models import ModelSpec, N3NetConfig, descriptor_for, get_spec, register, registry
from n3cli.weights import PAPER_SOURCES, fetch_paper, import_checkpoint, load_model
from n3cli.weights import store as store_mod

NAMES = sorted(PAPER_SOURCES)


@pytest.fixture
def official(shared_file):
    for src in PAPER_SOURCES.values():
        shared_file(f"weights/official/{src.relpath}")
    return shared_file("weights/official")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("N3_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    return tmp_path / "home"


def _store_files(home):
    return sorted(p.name for p in home.iterdir()) if home.exists() else []


def _assert_paper_installed(home):
    assert _store_files(home) == sorted(f"{n}.{ext}" for n in NAMES for ext in ("json", "safetensors"))
    assert not list(home.glob("*.t7"))  # the pickles are never kept


def test_fetch_from_file_mirror(official, home):
    fetch_paper(official.as_uri())
    _assert_paper_installed(home)
    model, spec = load_model("n3net-paper-s50")
    assert spec.descriptor.sigma == 50.0 and not model.training
    sd = torch.load(official / PAPER_SOURCES["n3net-paper-s50"].relpath, map_location="cpu",
                    weights_only=True)["net"]
    got = model.state_dict()
    assert torch.equal(got["nls.1.dist_bn.running_var"],
                       sd["nls.1.n3aggregation.aggregation.nnn.bn.running_var"])
    assert torch.equal(got["blocks.2.conv2.weight"], sd["blocks.2.conv2.weight"])
    # A second fetch keeps what is installed intact; a damaged one is fetched again.
    said = []
    assert fetch_paper(official.as_uri(), progress=said.append) == []
    assert sum("is installed" in m for m in said) == 3 and not any("downloading" in m for m in said)
    (home / "n3net-paper-s70.safetensors").write_bytes(b"damaged")
    assert [p.stem for p in fetch_paper(official.as_uri())] == ["n3net-paper-s70"]
    assert len(fetch_paper(official.as_uri(), force=True)) == 3


def test_fetch_over_http(official, home):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(official))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        fetch_paper(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    _assert_paper_installed(home)


def test_tampered_download_installs_nothing(official, home, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(official, mirror)
    bad = mirror / PAPER_SOURCES["n3net-paper-s70"].relpath
    bad.chmod(0o644)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        fetch_paper(str(mirror))
    assert _store_files(home) == []


def test_wrong_file_for_paper_name_is_refused(official, home):
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        import_checkpoint(official / PAPER_SOURCES["n3net-paper-s50"].relpath, "n3net-paper-s25")
    assert _store_files(home) == []


def test_import_under_new_name_infers_architecture(official, home):
    path = official / PAPER_SOURCES["n3net-paper-s25"].relpath
    import_checkpoint(path, "my-gray-s25", sigma=25)
    import_checkpoint(path, "n3net-paper-s25")
    mine, spec = load_model("my-gray-s25")
    assert spec.config == N3NetConfig() and spec.descriptor.sigma == 25.0
    paper, _ = load_model("n3net-paper-s25")
    for k, v in paper.state_dict().items():
        assert torch.equal(v, mine.state_dict()[k]), k


def test_shape_mismatch_on_import(home, tmp_path):
    register(ModelSpec("test-gray", N3NetConfig(), descriptor_for(N3NetConfig(), sigma=25.0)))
    sd = get_spec("test-gray").build().state_dict()
    sd["blocks.0.conv1.weight"] = torch.zeros(64, 2, 3, 3)
    path = tmp_path / "ckpt.pt"
    torch.save({"net": sd}, path)
    with pytest.raises(WeightsError, match="shape mismatch"):
        import_checkpoint(path, "test-gray")
    assert _store_files(home) == []


class _NotATensor:
    pass


def test_pickle_with_objects_is_refused(home, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"net": {"x": _NotATensor()}}, path)
    with pytest.raises(WeightsError, match="not a tensor-only PyTorch checkpoint.*never unpickles"):
        import_checkpoint(path, "evil")


def test_bundled_name_cannot_be_shadowed(home, tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"
    bundled.mkdir()
    net = get_spec("n3net-paper-s25")
    store_mod.save_model(bundled, "shipped", net.build(), net.config, net.descriptor)
    monkeypatch.setattr(store_mod, "bundled_dir", lambda: bundled)
    import n3cli.weights.paper as paper_mod

    monkeypatch.setattr(paper_mod, "bundled_dir", lambda: bundled)
    with pytest.raises(UsageError, match="bundled"):
        import_checkpoint(tmp_path / "whatever.pt", "shipped")


def test_cli_fetch_list_and_errors(official, home, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["weights", "list"])
    assert res.exit_code == 0 and "n3net-paper-s25" in res.output and "not installed" in res.output
    res = runner.invoke(cli, ["weights", "fetch", "paper", "--mirror", official.as_uri()])
    assert res.exit_code == 0, res.output
    assert "research and education only" in " ".join(res.output.split())  # rich wraps lines
    res = runner.invoke(cli, ["weights", "list"])
    rows = [line for line in res.output.splitlines() if "n3net-paper-s" in line]
    assert res.exit_code == 0 and len(rows) == 3
    assert all("not installed" not in r and "store" in r for r in rows)
    res = runner.invoke(cli, ["weights", "fetch", "paper", "--force", "--mirror", str(tmp_path / "none")])
    assert res.exit_code == 2 and res.output.strip().splitlines()[-1].startswith("n3: error: --mirror")
    assert "no such folder" in res.stderr
    (tmp_path / "empty").mkdir()
    res = runner.invoke(cli, ["weights", "fetch", "paper", "--force", "--mirror", str(tmp_path / "empty")])
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1].startswith("n3: error: cannot download")
    assert "check the --mirror folder" in res.stderr and "or use --mirror" not in res.stderr
    assert res.stdout == ""  # the licence notice and progress are messages: stderr
    junk = tmp_path / "junk.t7"
    junk.write_bytes(b"not a checkpoint")
    res = runner.invoke(cli, ["weights", "import", str(junk), "--name", "junk"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert res.output.strip().startswith("n3: error:")


def test_an_n3_export_imports_as_it_was_trained(home, tmp_path):
    """The JSON n3 writes beside each .safetensors carries what tensors cannot show
    (half-resolution packing, window): an inferred config would build another network."""
    from n3cli.models import N3NetConfig as Cfg

    cfg = Cfg(image_channels=1, in_channels=2, out_channels=1, features=8, embed_features=8,
              unshuffle=2, depth=3, n3_channels=4, k=2, window=7, num_n3=1)
    spec = ModelSpec("half-res-gray", cfg, descriptor_for(cfg), "a test export")
    exported = tmp_path / "export"
    store_mod.save_model(exported, "half-res-gray", spec.build(), cfg, spec.descriptor, summary="a test export")
    weights = exported / "half-res-gray.safetensors"
    import_checkpoint(weights, "mine")
    net, got = load_model("mine")
    assert got.config.unshuffle == 2 and got.config.window == 7 and got.descriptor.image_channels == 1
    assert got.summary == "a test export"
    import_checkpoint(exported / "half-res-gray.json", "mine2")  # naming the description works too
    assert load_model("mine2")[1].config == got.config
    # A description of other weights is refused, not trusted.
    other = exported / "other.safetensors"
    shutil.copyfile(weights, other)
    (exported / "other.json").write_text((exported / "half-res-gray.json").read_text().replace(
        '"sha256": "', '"sha256": "0'))
    with pytest.raises(WeightsError, match="describes other weights"):
        import_checkpoint(other, "mine3")
    # Without its description the input packing cannot be seen in the tensors: refused,
    # rather than installed as a full-resolution 8-channel model that cannot run.
    alone = tmp_path / "alone.safetensors"
    shutil.copyfile(weights, alone)
    with pytest.raises(WeightsError, match="cannot tell how this N3Net's 8-channel input is packed"):
        import_checkpoint(alone, "mine4")
    assert "mine4" not in store_mod.installed()


def test_an_unusable_store_breaks_neither_bundled_models_nor_messages(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("N3_HOME", str(tmp_path / "a-file" / "store"))
    assert store_mod.installed()  # the bundled models are still there
    with pytest.raises(WeightsError, match="not a usable folder"):
        store_mod.store_dir()
