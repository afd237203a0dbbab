"""scripts/gpu_train.sh end to end on the CPU, with tiny models and a tiny time budget.

The script is meant for a GPU; this checks its plumbing (probe, step planning, two
concurrent runs, collection of at most 8 files) on synthetic data in the same layout as
``scripts/prepare_gpu_data.sh`` makes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import pytest

from train_helpers import REPO, make_images

TINY = ("data.limit=4 optim.batch_size=2 model.features=8 model.depth=3 model.embed_features=8 "
        "model.k=2 validation.images=1 validation.crop=80 runtime.log_every=1")


def _run_script(tmp_path, extra: str, budget: str, val: str, configs: str | None = None,
                init: str | None = None, out_name: str = "out"):
    """gpu_train.sh on the CPU over a tiny BSDS500-like tree and one validation image in
    ``val`` (a folder under the data root); returns (process, output folder)."""
    data = tmp_path / "data"
    for sub in ("train", "test"):
        make_images(data / "BSDS500" / sub, count=3, size=(84, 90), color=True, seed=len(sub))
    make_images(data / val, count=1, size=(80, 80) if val == "Set12" else (72, 72), color=val != "Set12", seed=3)
    out = tmp_path / out_name
    env = {**os.environ, "PROBE_S": "8", "RESERVE_S": "5", "EXTRA_SET": extra, "DATA": str(data),
           "OMP_NUM_THREADS": "1", "PYTHON": sys.executable, **({"CONFIGS": configs} if configs else {}),
           **({"INIT": init} if init else {})}
    proc = subprocess.run(["bash", str(REPO / "scripts/gpu_train.sh"), budget, "cpu", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, out


@pytest.mark.slow
def test_gpu_train_script_on_cpu(tmp_path):
    proc, out = _run_script(tmp_path, TINY, "45", "Set12")
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8
    for name in ("n3net-blind", "n3net-blind-color"):
        for ext in (".safetensors", ".json", ".md", "-run.tar"):
            assert name + ext in files
        meta = json.loads((out / f"{name}.json").read_text())
        assert meta["descriptor"]["noise_map"]
        with tarfile.open(out / f"{name}-run.tar") as tar:
            assert {"metrics.jsonl", "config.toml", "train.log"} <= set(tar.getnames())
    assert "steps/s" in proc.stdout and "val PSNR" in proc.stdout

    # INIT=<folder>: both models start from the weights just trained (fine-tuning).
    proc, out2 = _run_script(tmp_path, TINY, "45", "Set12", init=str(out), out_name="out2")
    for name in ("n3net-blind", "n3net-blind-color"):
        config = json.loads((out2 / f"{name}.json").read_text())
        assert config["name"] == name
        card = (out2 / f"{name}.md").read_text()
        assert f"--init {out}/{name}.safetensors" in card  # the card's command says so


def test_gpu_train_script_refuses_an_init_folder_without_the_models(tmp_path):
    env = {**os.environ, "INIT": str(tmp_path), "DATA": str(tmp_path)}
    for sub in ("train", "test"):
        (tmp_path / "BSDS500" / sub).mkdir(parents=True)
    proc = subprocess.run(["bash", str(REPO / "scripts/gpu_train.sh"), "30", "cpu", str(tmp_path / "o")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "has no n3net-blind.safetensors" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_gpu_train_script_refuses_init_weights_of_another_architecture(tmp_path):
    """INIT=weights with the full-size recipes: the bundled weights are the half-resolution
    models of the cpu-blind-* configs (same names), so the script must stop before any
    device time is spent, not fail in its probes."""
    for sub in ("train", "test"):
        (tmp_path / "BSDS500" / sub).mkdir(parents=True)
    env = {**os.environ, "INIT": str(REPO / "weights"), "DATA": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(REPO / "scripts/gpu_train.sh"), "30", "cpu", str(tmp_path / "o")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "does not fit configs/blind-gray.toml" in proc.stderr, proc.stderr


TINY_SR = ("data.limit=4 optim.batch_size=2 model.features=8 model.depth=3 model.embed_features=8 "
           "model.k=2 model.window=3 data.crop=48 validation.images=1 validation.crop=60 runtime.log_every=1")


@pytest.mark.slow
def test_gpu_train_script_runs_the_sr_recipes_on_cpu(tmp_path):
    """The same script, CONFIGS="paper-sr sr": the GPU recipes of issue 10, end to end."""
    proc, out = _run_script(tmp_path, TINY_SR, "50", "Set5/HR", "paper-sr sr")
    for name in ("n3net-sr-paper", "n3net-sr"):
        meta = json.loads((out / f"{name}.json").read_text())
        assert meta["arch"] == "n3net-sr" and meta["descriptor"]["task"] == "sr"
        assert set(meta["training"]["val_psnr"]) >= {"s2", "s3", "s4"}  # Set5 watched at every scale
    assert "+ 0 BatchNorm steps" in proc.stdout  # no BatchNorm: no statistics phase


TINY_RAW = ("data.limit=4 data.holdout=0 optim.batch_size=2 model.features=8 model.depth=3 "
            "model.embed_features=8 model.n3_channels=8 model.k=2 model.window=3 data.crop=48 "
            "validation.images=1 validation.crop=60 runtime.log_every=1")


@pytest.mark.slow
def test_gpu_train_script_runs_the_raw_recipes_on_cpu(tmp_path):
    """CONFIGS="paper-raw cpu-raw": the raw recipes of issue 11 through the same script."""
    _, out = _run_script(tmp_path, TINY_RAW, "50", "Set12", "paper-raw cpu-raw")
    for name in ("n3net-raw-paper-repro", "n3net-raw"):
        meta = json.loads((out / f"{name}.json").read_text())
        assert meta["arch"] == "n3net-raw" and meta["descriptor"]["packing"] == "bayer"
        assert meta["descriptor"]["conditioning"] == ["a", "b"]
