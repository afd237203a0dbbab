"""`n3 eval` reporting: the paper's number is a diff only for the paper's own model;
an interrupted eval still shows what finished."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from n3cli.cli.eval_cmd import paper_reference
from n3cli.eval.protocol import EvalResult, ImageScore


def _result(model: str, model_sigma: float | None, **kw) -> EvalResult:
    base = dict(dataset="set12", sigma=25.0, model=model, protocol="paper", mean_psnr=30.5,
                mean_ssim=0.86, seconds=1.0, images=[ImageScore("01", 30.5, 0.86, 1.0)],
                model_sigma=model_sigma)
    return EvalResult(**{**base, **kw})


def test_paper_number_is_a_diff_only_for_the_papers_model():
    own = paper_reference(_result("n3net-paper-s25", 25.0), limited=False)
    assert own["paper_psnr"] == 30.55 and own["diff_to_paper"] == round(30.5 - 30.55, 4)
    assert "sigma 25" in own["paper_model"]
    for other, limited in ((_result("n3net-blind", None), False), (_result("n3net-paper-s50", 50.0), False),
                           (_result("n3net-paper-s25", 25.0, ensemble=8), False),
                           (_result("n3net-paper-s25", 25.0, precision="bf16"), False),
                           (_result("n3net-paper-s25", 25.0, protocol="kair"), False),
                           (_result("n3net-paper-s25", 25.0), True)):
        ref = paper_reference(other, limited)
        assert ref["paper_psnr"] == 30.55 and ref["diff_to_paper"] is None, other


def test_bundled_model_eval_says_reference_not_diff(run, tiny, tmp_path):
    (tmp_path / "Set12").mkdir()
    rng = np.random.default_rng(0)
    for name in ("01", "02", "03"):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(tmp_path / "Set12" / f"{name}.png")
    r = run("eval", "--dataset", "set12", "--model", "tiny-s25", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert "a reference for this model, not a diff" in r.stdout


def test_interrupted_eval_prints_the_partial_mean(run, tiny, tmp_path, monkeypatch):
    (tmp_path / "Set12").mkdir()
    rng = np.random.default_rng(0)
    for name in ("01", "02", "03"):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(tmp_path / "Set12" / f"{name}.png")
    import n3cli.eval.protocol as protocol

    real, calls = protocol._score_paper, []

    def score_then_interrupt(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(protocol, "_score_paper", score_then_interrupt)
    r = run("eval", "--dataset", "set12", "--model", "tiny-s25", "--data-dir", tmp_path)
    assert r.exit_code == 130
    assert "interrupted: means of the images that finished" in r.stdout
    assert "n3: interrupted after 2 images" in r.stderr


def test_urban100_is_a_denoising_set_too(run, tiny, tmp_path):
    # Urban100 is in Table 3 as well as in the SR tables: denoising must not ask for --task sr.
    folder = tmp_path / "Urban100" / "image_SRF_4"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("img_001", "img_002"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{name}_SRF_4_HR.png")
    r = run("eval", "--dataset", "urban100", "--model", "tiny-s25", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert "urban100" in r.stdout.lower()
    r = run("eval", "--dataset", "b100", "--sigma", "25")
    assert r.exit_code == 2 and "add --task sr" in r.stderr


def test_eval_refuses_what_it_cannot_score_and_notes_extrapolation(run, tiny, tmp_path):
    (tmp_path / "Set12").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)).save(
        tmp_path / "Set12" / "01.png")
    r = run("eval", "--dataset", "set12", "--sigma", "25", "--model", "tiny-sr", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "'tiny-sr' is not a Gaussian denoiser (task sr)" in r.stderr
    assert "--task sr" in r.stderr and "Traceback" not in r.stderr
    r = run("eval", "--dataset", "set12", "--sigma", "300", "--model", "tiny-blind-color", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "--sigma 300 is out of range" in r.stderr
    r = run("eval", "--dataset", "set12", "--sigma", "80", "--model", "tiny-blind-color", "--data-dir", tmp_path)
    assert r.exit_code == 0, r.stderr
    assert "sigma 80 is outside tiny-blind-color's training range 0..75" in r.stdout


def test_eval_checks_its_json_target_before_evaluating(run, tmp_path):
    r = run("eval", "--dataset", "set12", "--sigma", "25", "--limit", "1", "--json", tmp_path / "no" / "r.json")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = run("eval", "--dataset", "set12", "--sigma", "25", "--limit", "1", "--json", tmp_path)
    assert r.exit_code == 2 and "is a directory" in r.stderr
    (tmp_path / "afile").write_text("x")
    r = run("eval", "--dataset", "set12", "--sigma", "25", "--limit", "1", "--json", tmp_path / "afile" / "r.json")
    assert r.exit_code == 2 and "afile is a file, not a folder" in r.stderr
    if os.geteuid() != 0:  # root writes anywhere: no unwritable folder to try
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        r = run("eval", "--dataset", "set12", "--sigma", "25", "--limit", "1", "--json", ro / "r.json")
        assert r.exit_code == 2 and "is not a writable folder" in r.stderr
    r = run("eval", "--task", "raw", "--noise", "1e-3,1e-5,2e-3,1e-5,1e-3,1e-5,1e-3,1e-5", "--limit", "1")
    assert r.exit_code == 2 and "takes one pair a,b" in r.stderr


def test_eval_refuses_what_a_task_would_ignore(run, tmp_path):
    """Options another task would use are refused, not silently dropped (nothing is scored)."""
    for args, message in ((["--task", "sr", "--limit", "0"], "--limit must be at least 1"),
                          (["--task", "raw", "--limit", "-2"], "--limit must be at least 1"),
                          (["--task", "raw", "--scale", "2"], "--scale is for --task sr"),
                          (["--task", "sr", "--protocol", "kair"], "--protocol is for --task denoise"),
                          (["--task", "raw", "--protocol", "real"], "--protocol is for --task denoise"),
                          (["--task", "sr", "--gray-on-color", "opponent"], "--gray-on-color is for --task denoise")):
        r = run("eval", *args, "--data-dir", tmp_path)
        assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output, (args, r.output)


def test_sr_eval_refuses_a_test_image_too_small_to_score(run, tiny, tmp_path):
    (tmp_path / "Set5" / "HR").mkdir(parents=True)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "Set5" / "HR" / "a.png")
    r = run("eval", "--task", "sr", "--scale", "4", "--model", "tiny-sr", "--data-dir", tmp_path)
    assert r.exit_code == 2 and "a.png is 3x3: too small to score at x4" in r.stderr
    assert "Traceback" not in r.output and "internal error" not in r.output


def _images(folder, names, shape):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / name)


def test_denoise_receipt_says_seed_and_how_a_gray_model_ran_on_colour(run, tiny, tmp_path):
    """The --json receipt carries what changes the number: the noise seed of the protocol,
    the gray-on-colour strategy (about 5 dB apart on CBSD68) and the weights' sha256."""
    _images(tmp_path / "Set12", ["01.png"], (40, 40))
    _images(tmp_path / "CBSD68", ["101085.png"], (40, 40, 3))
    args = ("eval", "--model", "tiny-s25", "--data-dir", tmp_path, "--json", "-")
    for extra, seed, strategy in ((["--dataset", "set12"], 1234, None),
                                  (["--dataset", "set12", "--protocol", "kair"], 0, None),
                                  (["--dataset", "cbsd68", "--gray-on-color", "opponent"], 1234, "opponent"),
                                  (["--dataset", "cbsd68"], 1234, "rgb")):
        r = run(*args, *extra)
        assert r.exit_code == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["seed"] == seed and doc["gray_on_color"] == strategy, extra
        assert "model_sha256" in doc and doc["model_sha256"] is None  # tiny-s25 has no file


def test_sr_and_raw_receipts_name_the_model_and_how_it_ran(run, tiny, tmp_path):
    _images(tmp_path / "Set5" / "HR", ["baby.png"], (40, 40, 3))
    r = run("eval", "--task", "sr", "--scale", "2", "--model", "tiny-sr", "--ensemble", "2",
            "--precision", "bf16", "--data-dir", tmp_path, "--json", "-")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["model"], doc["ensemble"], doc["precision"]) == ("tiny-sr", 2, "bf16") and "model_sha256" in doc
    _images(tmp_path / "Set12", ["01.png"], (40, 40))
    r = run("eval", "--task", "raw", "--model", "tiny-raw", "--noise", "0.01,5e-5", "--data-dir", tmp_path,
            "--json", "-")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["model"], doc["ensemble"], doc["precision"]) == ("tiny-raw", 1, "fp32") and "model_sha256" in doc


def test_receipt_carries_the_sha256_of_the_weights_that_ran(run, tmp_path, monkeypatch):
    import torch

    from n3cli.models import N3Net, N3NetConfig, descriptor_for, registry
    from n3cli.weights import save_model
    from n3cli.weights.store import sha256_file

    monkeypatch.setenv("N3_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    cfg = N3NetConfig(features=8, depth=3, embed_features=8, embed_depth=2, n3_channels=4, k=2, window=5)
    torch.manual_seed(0)
    save_model(tmp_path / "home", "mine", N3Net(cfg).eval(), cfg, descriptor_for(cfg, sigma=25.0))
    _images(tmp_path / "Set12", ["01.png"], (40, 40))
    r = run("eval", "--model", "mine", "--data-dir", tmp_path, "--json", "-")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["model_sha256"] == sha256_file(tmp_path / "home" / "mine.safetensors")


def test_bicubic_refuses_ensemble_and_precision(run, tmp_path):
    """bicubic has neither: 'bicubic x8' was printed for the plain bicubic number."""
    for extra in (["--ensemble", "8"], ["--precision", "bf16"]):
        r = run("eval", "--task", "sr", "--model", "bicubic", "--scale", "2", "--data-dir", tmp_path, *extra)
        assert r.exit_code == 2 and "not bicubic" in r.stderr, r.output


def test_json_in_the_model_folder_is_refused(run, tmp_path, monkeypatch):
    """--json over a model's description broke the model ('installed but broken')."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "mine.json").write_text("{}")
    monkeypatch.setenv("N3_HOME", str(home))
    r = run("eval", "--dataset", "set12", "--sigma", "25", "--limit", "1", "--json", home / "mine.json")
    assert r.exit_code == 2 and "is in the model folder" in r.stderr
    assert (home / "mine.json").read_text() == "{}"
