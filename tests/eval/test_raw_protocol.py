"""The raw (Poisson-Gaussian) protocol: reproducible noise of the right statistics, the
same cases for every method, and `n3 eval --task raw` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from n3cli.eval.raw import RAW_GRID, raw_case, raw_evaluate


def test_grid_spans_the_papers_ranges():
    la = np.log10([a for a, _ in RAW_GRID])
    lb_off = np.log10([b for _, b in RAW_GRID]) - la
    assert la.min() == pytest.approx(-4) and la.max() == pytest.approx(-1)
    assert lb_off.min() == pytest.approx(-3.6) and lb_off.max() == pytest.approx(-1.0)


def test_cases_are_reproducible_clipped_and_of_the_model_variance():
    clean = np.full((200, 200, 1), 0.3, np.float32)
    t1, n1 = raw_case(clean, 1e-2, 1e-4, (1, 2, 3))
    t2, n2 = raw_case(clean, 1e-2, 1e-4, (1, 2, 3))
    assert np.array_equal(n1, n2) and np.array_equal(t1, clean)
    assert not np.array_equal(n1, raw_case(clean, 1e-2, 1e-4, (1, 2, 4))[1])
    assert np.var(n1 - clean) == pytest.approx(1e-2 * 0.3 + 1e-4, rel=0.05)
    _, dark = raw_case(np.zeros((50, 50, 1), np.float32), 1e-2, 1e-2, (0,))
    assert dark.min() == 0.0 and (dark == 0).mean() > 0.4  # clipped at black, like a sensor
    toned, _ = raw_case(clean, 1e-3, 1e-5, (5,), tone=True)
    assert toned.max() < 0.3  # x^g * s darkens


def test_identity_scores_the_noisy_psnr_on_the_same_cases(shared_dir):
    grid = [RAW_GRID[0], RAW_GRID[3]]  # a = 1e-4 and 1e-1
    r = raw_evaluate(lambda z, a, b: z, "identity", "set12", grid, limit=2)
    for p in r.pairs:
        assert p.mean_psnr == pytest.approx(p.noisy_psnr)
    assert r.pairs[0].noisy_psnr > r.pairs[1].noisy_psnr + 20  # 1000x the variance
    blur = raw_evaluate(lambda z, a, b: (z + np.roll(z, 1, 0) + np.roll(z, 1, 1)) / 3, "blur", "set12",
                        grid, limit=2)
    assert blur.pairs[1].mean_psnr > r.pairs[1].mean_psnr  # noise-limited: averaging helps


def test_cli_task_raw(shared_dir, run, tiny, tmp_path):
    out = tmp_path / "r.json"
    res = run("eval", "--task", "raw", "--dataset", "set12", "--model", "tiny-raw", "--limit", "1",
              "--noise", "0.01,5e-5", "--json", out)
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["method"] == "tiny-raw" and len(doc["pairs"]) == 1 and doc["pairs"][0]["a"] == 0.01
    assert doc["images"] == ["01"] and np.isfinite(doc["mean_psnr"])
    res = run("eval", "--task", "raw", "--dataset", "set12", "--model", "tiny-s25", "--limit", "1")
    assert res.exit_code == 2 and "cannot be told Poisson-Gaussian noise" in res.output
    res = run("eval", "--dataset", "set12", "--sigma", "25", "--noise", "0.01,1e-4")
    assert res.exit_code == 2 and "--task raw" in res.output
    res = run("eval", "--task", "raw", "--dataset", "cbsd68")
    assert res.exit_code == 2 and "set12 or bsd68" in res.output


def test_parts_of_a_run_score_each_image_as_the_whole_run_does(shared_dir):
    grid = [(1e-3, 5e-6), (1e-2, 5e-5)]
    whole = raw_evaluate(lambda z, a, b: z, "identity", "set12", grid, limit=3)
    odd = raw_evaluate(lambda z, a, b: z, "identity", "set12", grid, limit=3, only=[1])
    even = raw_evaluate(lambda z, a, b: z, "identity", "set12", grid, limit=3, only=[2, 0])
    assert odd.images == [whole.images[1]] and even.images == [whole.images[0], whole.images[2]]
    for j in range(len(grid)):
        assert odd.pairs[j].psnr == [whole.pairs[j].psnr[1]]
        assert even.pairs[j].psnr == [whole.pairs[j].psnr[0], whole.pairs[j].psnr[2]]


def test_model_raw_denoiser_is_a_library_function(tiny):
    """The adapter `n3 eval --task raw` uses, callable without the CLI: a plane and its
    (a, b) in, a plane of the same shape out; a model without a noise input is refused."""
    import torch

    from n3cli.errors import UsageError
    from n3cli.eval.raw import model_raw_denoiser
    from n3cli.weights import load_model

    dev = torch.device("cpu")
    denoise = model_raw_denoiser(*load_model("tiny-raw", dev), dev)
    noisy = np.random.default_rng(0).random((48, 40, 1))
    out = denoise(noisy, 1e-2, 5e-5)
    assert out.shape == noisy.shape and np.isfinite(out).all()
    with pytest.raises(UsageError, match="cannot be told Poisson-Gaussian noise"):
        model_raw_denoiser(*load_model("tiny-s25", dev), dev)
