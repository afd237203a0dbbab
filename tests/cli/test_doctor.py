"""``n3 doctor`` and the top-level help."""

from __future__ import annotations

import json


def test_doctor_reports_the_basics(run):
    r = run("doctor")
    assert r.exit_code == 0, r.output
    for word in ("torch", "threads", "cuda", "mps", "models", "store", "data"):
        assert word in r.stdout
    doc = json.loads(run("doctor", "--json").stdout)
    assert doc["devices"]["threads"] >= 1 and "writable" in doc["store"]
    assert isinstance(doc["devices"]["cpu_native_bf16"], bool) and "bf16" in r.stdout


def test_help_version_and_completion(run):
    r = run("--version")
    assert r.exit_code == 0 and "n3" in r.stdout
    r = run("denoise", "--help")
    assert r.exit_code == 0 and "Examples:" in r.stdout and "--sigma" in r.stdout
    assert "_N3_COMPLETE=bash_source" in run("--help").stdout


def test_unexpected_errors_are_one_line_unless_debug(run, monkeypatch, tmp_path):
    import n3cli.io.batch as cmd  # run_batch imports plan_batch from here when it runs

    def broken(*a, **k):
        raise RuntimeError("a bug\nacross lines")

    monkeypatch.setattr(cmd, "plan_batch", broken)
    r = run("denoise", tmp_path, "-s", "25")
    assert r.exit_code == 1
    assert r.stderr.strip() == ("n3: internal error: RuntimeError: a bug across lines "
                                "(rerun with --debug for the traceback)")
    r = run("--debug", "denoise", tmp_path, "-s", "25")
    assert isinstance(r.exception, RuntimeError)


def test_doctor_says_whether_bf16_is_native(run, monkeypatch):
    from n3cli.engine import precision

    for native, text in ((True, "native on this CPU"), (False, "not native on this CPU")):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
        r = run("doctor")
        assert r.exit_code == 0 and text in r.stdout


def test_doctor_changes_nothing(run, tmp_path, monkeypatch):
    """A store that does not exist yet is reported (and could it be created), not created."""
    monkeypatch.setenv("N3_HOME", str(tmp_path / "newhome"))
    r = run("doctor", "--json")
    assert r.exit_code == 0, r.output
    store = json.loads(r.stdout)["store"]
    assert store == {"path": str(tmp_path / "newhome"), "exists": False, "writable": True}
    assert not (tmp_path / "newhome").exists()


def test_doctor_names_a_broken_model_file(run, monkeypatch, tmp_path):
    monkeypatch.setenv("N3_HOME", str(tmp_path))
    (tmp_path / "mine.json").write_text("{bad")
    r = run("doctor")
    assert r.exit_code == 0 and "broken model file" in r.stdout and "mine.json" in r.stdout


def test_weights_path_prints_without_creating(run, monkeypatch, tmp_path):
    home = tmp_path / "afile"
    home.write_text("not a folder")
    monkeypatch.setenv("N3_HOME", str(home))
    r = run("weights", "path")
    assert r.exit_code == 0 and f"store:   {home}" in r.stdout
    monkeypatch.setenv("N3_HOME", str(tmp_path / "new"))
    assert run("weights", "path").exit_code == 0 and not (tmp_path / "new").exists()


def test_doctor_names_a_model_whose_weights_cannot_load(run, monkeypatch, tmp_path):
    """A model whose JSON reads but whose weights are gone or altered was listed as installed."""
    import torch

    from n3cli.models import N3Net, N3NetConfig, descriptor_for, registry
    from n3cli.weights import save_model

    monkeypatch.setenv("N3_HOME", str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    cfg = N3NetConfig(features=8, depth=3, embed_features=8, embed_depth=2, n3_channels=4, k=2, window=5)
    torch.manual_seed(0)
    save_model(tmp_path, "mine", N3Net(cfg).eval(), cfg, descriptor_for(cfg, sigma=25.0))
    assert "mine (store)" in json.loads(run("doctor", "--json").stdout)["models"]["installed"]
    (tmp_path / "mine.safetensors").write_bytes(b"not the weights")
    doc = json.loads(run("doctor", "--json").stdout)["models"]
    assert "mine (store)" not in doc["installed"] and "fail their checksum" in doc["broken"]["mine"]
    r = run("doctor")
    assert r.exit_code == 0 and "mine cannot load" in r.stdout
