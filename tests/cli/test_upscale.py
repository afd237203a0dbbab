"""``n3 upscale`` through the real CLI with a tiny random-weight SR model: sizes, formats,
alpha, metadata, batches, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from cli_helpers import save_gray, save_rgb
from PIL import Image as PILImage

from n3cli.io import Image, Metadata, read_image, write_image


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_gray_and_colour_png(tmp_path, tiny, run, scale):
    for make, name in ((save_gray, "g.png"), (save_rgb, "c.png")):
        src = make(tmp_path / name, 30, 41)
        r = run("upscale", src, "--scale", scale, "--model", "tiny-sr")
        assert r.exit_code == 0, r.stderr
        out = PILImage.open(tmp_path / f"{src.stem}_x{scale}.png")
        assert out.size == (41 * scale, 30 * scale) and out.mode == PILImage.open(src).mode
        assert "model tiny-sr" in r.stderr and r.stdout == ""


def test_16bit_alpha_dpi_and_float_tiff(tmp_path, tiny, run):
    rng = np.random.default_rng(0)
    img = Image(pixels=(rng.integers(0, 65536, (20, 24, 3)) / 65535).astype(np.float32),
                alpha=np.linspace(0, 1, 20 * 24, dtype=np.float32).reshape(20, 24), bit_depth=16,
                metadata=Metadata(dpi=(300.0, 300.0)))
    write_image(tmp_path / "a.png", img)
    tifffile.imwrite(tmp_path / "f.tif", rng.random((20, 24), dtype=np.float32))
    r = run("upscale", tmp_path / "a.png", tmp_path / "f.tif", "--scale", "2", "--model", "tiny-sr",
            "-o", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    a = read_image(tmp_path / "out" / "a_x2.png")
    assert a.bit_depth == 16 and a.pixels.shape == (40, 48, 3) and a.alpha.shape == (40, 48)
    # Alpha is bicubic-upscaled, not run through the network: a ramp stays a ramp.
    assert np.all(np.diff(a.alpha[10, 5:40]) >= -1e-4)
    assert a.metadata.dpi == pytest.approx((600, 600), rel=1e-3)
    f = read_image(tmp_path / "out" / "f_x2.tif")
    assert f.bit_depth == 32 and f.pixels.shape == (40, 48, 1)


def test_batch_resume_json_and_a_broken_file(tmp_path, tiny, run):
    src = tmp_path / "in"
    for i in range(3):
        save_rgb(src / f"p{i}.png", 16, 18, seed=i)
    (src / "bad.png").write_bytes(b"not an image")
    r = run("upscale", src, "--scale", "3", "--model", "tiny-sr", "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["summary"]["succeeded"] == 3 and doc["summary"]["failed"] == 1
    ok = [i for i in doc["items"] if i["status"] == "ok"][0]
    assert ok["image"].endswith("-> 54x48 (x3)") and ok["estimated_seconds"] is not None
    r = run("upscale", src, "--scale", "3", "--model", "tiny-sr")
    assert "0 succeeded, 3 skipped, 1 failed" in r.stderr  # the outputs are not inputs again
    r = run("upscale", src, "--scale", "3", "--model", "tiny-sr", "--dry-run")
    assert "output of an earlier run" in r.stdout


def test_upscale_errors_are_one_line(tmp_path, tiny, run):
    src = save_gray(tmp_path / "g.png", 30, 30)
    for args, code, text in (
            (["--scale", "5"], 2, "Invalid value for '-s' / '--scale'"),
            ([], 2, "Missing option '-s' / '--scale'"),
            (["--scale", "2", "--model", "tiny-s25"], 2, "does not upscale"),
            (["--scale", "2", "--model", "nope"], 2, "unknown model 'nope'"),
            (["--scale", "4", "--model", "tiny-sr", "--max-pixels", "10000"], 1,
             "30x30 upscaled x4 to 120x120 is 14,400 pixels, above the limit of 10,000 pixels")):
        r = run("upscale", src, *args)
        assert r.exit_code == code, (args, r.stderr)
        assert text in r.stderr and "Traceback" not in r.stderr
    r = run("upscale", "--scale", "2")
    assert r.exit_code == 2 and "no input given" in r.stderr


def test_tiled_upscale_equals_whole_image(tmp_path, tiny, run):
    src = save_gray(tmp_path / "g.png", 90, 81)
    for tile, out in (("0", "whole.tif"), ("24", "tiled.tif")):
        r = run("upscale", src, "--scale", "2", "--model", "tiny-sr", "--tile", tile, "--format", "tiff",
                "-o", tmp_path / out)
        assert r.exit_code == 0, r.stderr
    whole, tiled = read_image(tmp_path / "whole.tif").pixels, read_image(tmp_path / "tiled.tif").pixels
    assert whole.shape == (180, 162, 1)
    assert np.abs(whole - tiled).max() <= 1 / 255  # 8-bit input, 8-bit output: within rounding
