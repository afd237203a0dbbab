"""The SR protocol: its bicubic row reproduces the paper's Set5 numbers (the guard), and
the pieces (mod-crop, 8-bit LR, Y after shaving) behave as specified."""

from __future__ import annotations

import numpy as np
import pytest

from n3cli.eval.sr import SR_REFERENCES, bicubic_upscale, make_lr, score_y, sr_evaluate

# Measured with this protocol (HR mod-crop, MATLAB-bicubic LR rounded to 8 bits, bicubic
# back, 8-bit output, Y PSNR after shaving the scale): 33.68 / 30.40 / 28.43 dB; the
# paper prints 33.68 / 30.41 / 28.43.
GUARD = {2: 33.68, 3: 30.40, 4: 28.43}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_set5(shared_file, scale):
    shared_file("datasets/Set5/HR/baby.png")
    res = sr_evaluate(bicubic_upscale, "bicubic", "set5", scale, shared_file("datasets"))
    assert len(res.images) == 5
    assert res.mean_psnr == pytest.approx(GUARD[scale], abs=0.02)
    assert abs(res.mean_psnr - SR_REFERENCES["bicubic"][scale]) < 0.02
    assert 0.8 < res.mean_ssim < 0.95


def test_protocol_pieces():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (31, 22, 3), dtype=np.uint8)
    crop, lr = make_lr(hr, 3)
    assert crop.shape == (30, 21, 3) and lr.shape == (10, 7, 3)
    assert np.array_equal(lr, np.round(lr * 255) / 255)  # an 8-bit LR image
    p, s = score_y(crop, crop / 255.0, 3)
    assert p == pytest.approx(100.0) and s == pytest.approx(1.0)  # perfect (eps-limited PSNR)
    worse, _ = score_y(crop, np.clip(crop / 255.0 + 0.02, 0, 1), 3)
    assert 30 < worse < 40


def test_cli_eval_task_sr(run, tiny, shared_file):
    import json

    data = shared_file("datasets")
    shared_file("datasets/Set5/HR/baby.png")
    r = run("eval", "--task", "sr", "--dataset", "set5", "--scale", "2", "--model", "bicubic",
            "--data-dir", data, "--limit", "2", "--json", "-")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["method"] == "bicubic" and doc["scale"] == 2 and len(doc["images"]) == 2
    r = run("eval", "--task", "sr", "--dataset", "set5", "--scale", "3", "--model", "tiny-sr",
            "--data-dir", data, "--limit", "1", "--json", "-")
    assert r.exit_code == 0, r.stderr
    tiny_doc = json.loads(r.stdout)
    assert tiny_doc["method"] == "tiny-sr" and 20 < tiny_doc["mean_psnr"] < 40  # near bicubic: untrained
    for args, text in ((["--dataset", "set12"], "not a super-resolution test set"),
                       (["--model", "tiny-s25"], "is a denoise model")):
        r = run("eval", "--task", "sr", "--data-dir", data, "--limit", "1", "--scale", "2", *args)
        assert r.exit_code == 2 and text in r.stderr
    r = run("eval", "--dataset", "set5", "--sigma", "25")
    assert r.exit_code == 2 and "add --task sr" in r.stderr


def test_model_upscaler_is_a_library_function(tiny):
    """The adapter `n3 eval --task sr` uses: an SR model at one scale as an upscale
    function; a denoiser is refused."""
    import torch

    from n3cli.errors import UsageError
    from n3cli.eval.sr import model_upscaler
    from n3cli.weights import load_model

    dev = torch.device("cpu")
    upscale = model_upscaler(*load_model("tiny-sr", dev, scale=2), dev)
    lr = np.random.default_rng(0).random((30, 26, 1)).astype(np.float32)
    assert upscale(lr, 2).shape == (60, 52, 1)
    with pytest.raises(UsageError, match="is a denoise model"):
        model_upscaler(*load_model("tiny-s25", dev), dev)
