"""`n3 denoise` on camera raw files: the real KDC in ../shared end to end (DNG out, read
back by LibRaw), the noise model's sources, mixed folders, and clear refusals."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cli_helpers import save_gray

KDC = "raw/RAW_KODAK_DC50.KDC"


@pytest.fixture
def kdc(shared_file, tmp_path):
    src = tmp_path / "cam.KDC"
    shutil.copyfile(shared_file(KDC), src)
    return src


def test_real_raw_with_the_bundled_denoiser_writes_a_dng_libraw_reads(kdc, tmp_path):
    import rawpy

    out = tmp_path / "out.dng"
    p = subprocess.run([sys.executable, "-m", "n3cli", "denoise", str(kdc), "-o", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    item = json.loads(p.stdout)["items"][0]
    # The bundled raw model is the default for raw files (n3net-blind only when it is absent).
    assert item["model"] == "n3net-raw" and item["noise_source"] == "estimated"
    assert len(item["noise"]) == 4 and all(a >= 0 for a, _ in item["noise"])
    with rawpy.imread(str(kdc)) as a, rawpy.imread(str(out)) as b:
        src, den = a.raw_image_visible.astype(float), b.raw_image_visible.astype(float)
        assert den.shape == src.shape and np.array_equal(a.raw_pattern, b.raw_pattern)
        assert 0 < np.abs(den - src).mean() < 0.02 * 16383  # changed, but only by noise-sized amounts
    assert kdc.read_bytes() == (tmp_path / "cam.KDC").read_bytes()


def test_noise_given_and_reported_and_a_render_beside_the_dng(kdc, tmp_path, run, tiny):
    res = run("denoise", kdc, "-m", "tiny-raw", "--noise", "0.002,4e-6", "--render", "png", "--json")
    assert res.exit_code == 0, res.output
    item = json.loads(res.stdout)["items"][0]
    assert item["noise_source"] == "given" and item["noise"] == [[0.002, 4e-06]] * 4
    assert item["output"].endswith("cam_denoised.dng")
    from PIL import Image

    with Image.open(tmp_path / "cam_denoised.png") as im:
        assert im.size == (768, 512) and im.mode.startswith("I;16") or im.mode == "RGB"


def test_an_image_name_asks_for_the_rendering_instead_of_the_dng(kdc, tmp_path, run, tiny):
    """-o IMG.png: the 16-bit sRGB rendering alone, the same pixels --render png puts beside
    the DNG, and no DNG or temporary file left behind."""
    from n3cli.io.reader import read_image

    res = run("denoise", kdc, "-m", "tiny-raw", "--noise", "0.002,4e-6", "-o", tmp_path / "only.png", "--json")
    assert res.exit_code == 0, res.output
    assert "--sigma" not in res.stderr  # a raw's noise is (a, b): no reminder about sigma
    item = json.loads(res.stdout)["items"][0]
    assert item["output"].endswith("only.png") and any("rendering only" in n for n in item["notes"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.KDC", "only.png"]
    res = run("denoise", kdc, "-m", "tiny-raw", "--noise", "0.002,4e-6", "-o", tmp_path / "both.dng",
              "--render", "png")
    assert res.exit_code == 0, res.output
    only, beside = read_image(tmp_path / "only.png"), read_image(tmp_path / "both.png")
    assert only.bit_depth == 16 and only.pixels.shape == (512, 768, 3)
    assert np.array_equal(only.pixels, beside.pixels) and only.pixels.std() > 0.01


def test_a_folder_of_raws_and_images_does_each_its_way(kdc, tmp_path, run, tiny):
    save_gray(tmp_path / "photo.png", 48, 48)
    (tmp_path / "broken.CR2").write_bytes(b"not a raw file at all" * 50)
    res = run("denoise", tmp_path, "-m", "tiny-raw", "--dry-run", "--json")
    dst = {i["input"].rsplit("/", 1)[-1]: i["output"].rsplit("/", 1)[-1] for i in json.loads(res.stdout)["items"]}
    assert dst == {"broken.CR2": "broken_denoised.dng", "cam.KDC": "cam_denoised.dng",
                   "photo.png": "photo_denoised.png"}
    res = run("denoise", tmp_path, "-m", "tiny-raw", "--noise", "0.001,1e-5", "--json")
    items = {i["input"].rsplit("/", 1)[-1]: i for i in json.loads(res.stdout)["items"]}
    assert res.exit_code == 1
    assert items["cam.KDC"]["status"] == "ok"
    assert items["broken.CR2"]["status"] == "failed" and "not a camera raw LibRaw can decode" in items["broken.CR2"]["reason"]
    assert not (tmp_path / "broken_denoised.dng").exists()
    # photo.png is an image: tiny-raw is no image denoiser, a one-line reason, the others unaffected
    assert items["photo.png"]["status"] == "failed"
    assert "'tiny-raw' is a raw-denoise model, it cannot denoise an image" in items["photo.png"]["reason"]


def test_sigma_is_said_to_be_for_images_on_a_raw(kdc, tmp_path, run, tiny):
    res = run("denoise", kdc, "-m", "tiny-raw", "--sigma", "25", "--noise", "0.001,1e-5", "--json")
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["items"][0]["notes"]
    assert any("--sigma is for images" in n and "--noise a,b" in n for n in notes), notes


@pytest.mark.parametrize("args,text", [
    (["--noise", "1,2,3"], "--noise takes 2 or 8 numbers"),
    (["--noise", "x,y"], "bad --noise"),
    (["-o", "OUT.jpg"], "its output is a DNG"),
    (["-o", "OUT.png", "--render", "tiff"], "writes OUT's rendering instead of a DNG"),
    (["-m", "tiny-s25"], "cannot denoise a Bayer mosaic: it takes no noise map"),
    (["-m", "tiny-blind-color"], "cannot denoise a Bayer mosaic: it is a denoise model with 3"),
])
def test_bad_raw_requests_get_one_line(kdc, tmp_path, run, tiny, args, text):
    args = [a.replace("OUT", str(tmp_path / "o")) for a in args]
    text = text.replace("OUT", str(kdc))
    res = run("denoise", kdc, "-m", "tiny-raw", *args) if "-m" not in args else run("denoise", kdc, *args)
    assert res.exit_code != 0 and text in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_raw_flag_refuses_images_and_upscale_refuses_raws(kdc, tmp_path, run, tiny):
    png = save_gray(tmp_path / "p.png", 48, 48)
    res = run("denoise", png, "--raw", "-s", "25")
    assert res.exit_code == 2 and "not a camera raw file (--raw)" in res.stderr  # refused at planning
    # In a folder the image is a failed item beside the raw, which is denoised (exit 1).
    res = run("denoise", tmp_path, "--raw", "-m", "tiny-raw", "--noise", "1e-3,1e-5")
    assert res.exit_code == 1 and "not a camera raw file (--raw)" in res.stderr
    assert (tmp_path / "cam_denoised.dng").exists() and not (tmp_path / "p_denoised.png").exists()
    res = run("upscale", kdc, "--scale", "2", "-m", "tiny-sr")
    assert res.exit_code == 2 and "only n3 denoise reads raw files" in res.stderr


def test_a_raw_known_by_content_alone_is_named_dng(kdc, tmp_path, run, tiny):
    """No raw extension (here .dat): recognised by LibRaw, and its default output is a DNG."""
    dat = kdc.rename(tmp_path / "cam.dat")
    res = run("denoise", dat, "-m", "tiny-raw", "--noise", "0.001,1e-5")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cam_denoised.dng").exists() and not (tmp_path / "cam_denoised.png").exists()


def test_render_never_replaces_a_file_and_max_pixels_applies(kdc, tmp_path, run, tiny):
    mine = tmp_path / "cam_denoised.tif"
    mine.write_bytes(b"precious")
    res = run("denoise", kdc, "-m", "tiny-raw", "--noise", "0.001,1e-5", "--render", "tiff")
    assert res.exit_code != 0 and "cam_denoised.tif exists" in res.stderr
    assert mine.read_bytes() == b"precious" and not (tmp_path / "cam_denoised.dng").exists()
    res = run("denoise", kdc, "-m", "tiny-raw", "--noise", "0.001,1e-5", "--max-pixels", "1000")
    assert res.exit_code != 0 and "above the limit" in res.stderr


def test_raw_options_without_raws_are_said_to_do_nothing(tmp_path, run, tiny):
    png = save_gray(tmp_path / "p.png", 48, 48)
    res = run("denoise", png, "-s", "25", "-m", "tiny-s25", "--render", "png")
    assert res.exit_code == 0 and "--noise and --render are for camera raw files" in res.stderr
    assert (tmp_path / "p_denoised.png").exists()  # the image itself is denoised as usual
