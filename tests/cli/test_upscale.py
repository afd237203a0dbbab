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
    assert a.metadata.dpi == pytest.approx((600, 600), rel=1e-3)
    f = read_image(tmp_path / "out" / "f_x2.tif")
    assert f.bit_depth == 32 and f.pixels.shape == (40, 48, 1)


def test_alpha_edges_keep_their_colour(tmp_path, tiny, run):
    """A white shape on transparent black: the colours go premultiplied and alpha through
    the same network, so every visible edge pixel stays white (unweighted, the black of
    the transparent side bled into the edge as a dark fringe)."""
    a = np.zeros((24, 24, 4), np.uint8)
    a[:, :12] = 255
    a[6:18, 14:20] = (255, 255, 255, 128)  # half-transparent white next to the opaque part
    PILImage.fromarray(a, "RGBA").save(tmp_path / "logo.png")
    r = run("upscale", tmp_path / "logo.png", "--scale", "3", "--model", "tiny-sr")
    assert r.exit_code == 0, r.stderr
    out = np.asarray(PILImage.open(tmp_path / "logo_x3.png"))
    assert out.shape == (72, 72, 4)
    visible = out[..., 3] >= 5  # below about 4/255 the colour is the plain bicubic's
    assert visible.sum() > 36 * 72 and np.all(out[..., :3][visible] == 255)
    # An opaque alpha plane stays opaque (no network pass, no ringing).
    a[..., 3] = 255
    PILImage.fromarray(a, "RGBA").save(tmp_path / "opaque.png")
    assert run("upscale", tmp_path / "opaque.png", "--scale", "2", "--model", "tiny-sr").exit_code == 0
    assert np.all(np.asarray(PILImage.open(tmp_path / "opaque_x2.png"))[..., 3] == 255)


def test_premultiplied_colour_never_exceeds_alpha_and_no_negative_light(tmp_path, tiny, run):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (20, 22, 3)).astype(np.uint16)
    alpha = np.full((20, 22, 1), 128, np.uint16)
    tifffile.imwrite(tmp_path / "assoc.tif", np.concatenate([rgb // 2, alpha], 2).astype(np.uint8),
                     photometric="rgb", extrasamples=["assocalpha"])
    tifffile.imwrite(tmp_path / "hdr.tif", (rng.random((20, 22, 3)) * 4).astype(np.float32), photometric="rgb")
    r = run("upscale", tmp_path / "assoc.tif", tmp_path / "hdr.tif", "--scale", "2", "--model", "tiny-sr",
            "-o", tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    out = tifffile.imread(tmp_path / "out" / "assoc_x2.tif").astype(int)
    assert out.shape == (40, 44, 4) and np.all(out[..., :3] <= out[..., 3:])
    hdr = tifffile.imread(tmp_path / "out" / "hdr_x2.tif")
    assert hdr.min() >= 0.0 and hdr.max() > 1.0  # HDR highlights kept, no negative light


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


def test_dry_run_refuses_what_the_real_run_refuses_for_its_size(tmp_path, tiny, run):
    """The pixel limit and the output format's largest side, judged from the header."""
    src = save_gray(tmp_path / "g.png", 30, 30)
    PILImage.fromarray(np.zeros((2, 4100), np.uint8)).save(tmp_path / "wide.png")
    r = run("upscale", src, "--scale", "4", "--max-pixels", "10000", "--dry-run")
    assert r.exit_code == 1 and "above the limit of 10,000 pixels" in r.stdout
    assert run("upscale", src, "--scale", "4", "--max-pixels", "10000", "--model", "tiny-sr").exit_code == 1
    r = run("upscale", src, tmp_path / "wide.png", "--scale", "4", "--format", "webp", "--dry-run", "--json")
    assert r.exit_code == 1
    doc = {i["input"].rsplit("/", 1)[-1]: i for i in json.loads(r.stdout)["items"]}
    assert doc["g.png"]["action"] == "run" and doc["wide.png"]["action"] == "fail"
    assert "WEBP holds at most 16,383 pixels per side" in doc["wide.png"]["reason"]
    assert not list(tmp_path.glob("*_x4*"))
    assert run("upscale", src, "--scale", "4", "--dry-run").exit_code == 0


def test_tiled_upscale_equals_whole_image(tmp_path, tiny, run):
    src = save_gray(tmp_path / "g.png", 90, 81)
    for tile, out in (("0", "whole.tif"), ("24", "tiled.tif")):
        r = run("upscale", src, "--scale", "2", "--model", "tiny-sr", "--tile", tile, "--format", "tiff",
                "-o", tmp_path / out)
        assert r.exit_code == 0, r.stderr
    whole, tiled = read_image(tmp_path / "whole.tif").pixels, read_image(tmp_path / "tiled.tif").pixels
    assert whole.shape == (180, 162, 1)
    assert np.abs(whole - tiled).max() <= 1 / 255  # 8-bit input, 8-bit output: within rounding
