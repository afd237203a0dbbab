"""CI guard: the paper's sigma-25 model on the first four Set12 images, and `n3 eval` end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from n3cli.cli.main import cli
from n3cli.eval import evaluate
from n3cli.weights import load_model

# Measured once (CPU, torch 2.13) with:
#   n3 eval --dataset set12 --model n3net-paper-s25 --limit 4 --per-image --device cpu
EXPECTED_S25 = {"01": 30.0815, "02": 33.4012, "03": 30.8620, "04": 29.6057}


def test_paper_s25_first_four_set12_images(paper_store, set12):
    """Per-image PSNR of the released sigma-25 model, paper protocol, +-0.02 dB.

    Expected values were measured once by the command quoted above EXPECTED_S25 (the
    first four Set12 images are the 256x256 ones: cameraman, house, peppers, starfish).
    """
    model, spec = load_model("n3net-paper-s25")
    res = evaluate(model, spec, "set12", 25, data_dir=set12, limit=4)
    got = {im.name: im.psnr for im in res.images}
    assert list(got) == list(EXPECTED_S25)
    for name, value in EXPECTED_S25.items():
        assert got[name] == pytest.approx(value, abs=0.02), name
    assert 0.8 < res.mean_ssim < 0.95


def test_cli_eval_json(paper_store, set12, tmp_path):
    runner = CliRunner()
    args = ["eval", "--dataset", "set12", "--model", "n3net-paper-s25", "--limit", "1",
            "--data-dir", str(set12), "--device", "cpu"]
    res = runner.invoke(cli, args + ["--json", "-"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert {"dataset", "sigma", "model", "protocol", "mean_psnr", "mean_ssim", "seconds",
            "images"} <= set(out)
    assert out["sigma"] == 25 and out["protocol"] == "paper" and out["model"] == "n3net-paper-s25"
    assert out["images"][0]["name"] == "01"
    assert out["images"][0]["psnr"] == pytest.approx(EXPECTED_S25["01"], abs=0.02)
    # Table to stdout, JSON to a file (written atomically, nothing else left behind).
    target = tmp_path / "scores.json"
    res = runner.invoke(cli, args + ["--protocol", "kair", "--json", str(target)])
    assert res.exit_code == 0, res.output
    kair = json.loads(target.read_text())
    assert kair["protocol"] == "kair" and kair["mean_psnr"] != out["mean_psnr"]
    assert "30.55" in res.output  # the paper's number is shown beside ours
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_cli_eval_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["eval", "--dataset", "set12"])
    assert res.exit_code == 2 and "needs --sigma" in res.output
    res = runner.invoke(cli, ["eval", "--model", "nope", "--sigma", "25"])
    assert res.exit_code == 2 and res.output.startswith("n3: error: unknown model")
    assert "Traceback" not in res.output
