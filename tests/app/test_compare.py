"""Comparison sheets: layout, nearest-neighbour crops, metrics; ``n3 compare`` and
``n3 denoise --preview`` on real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from n3cli.app.compare import GAP, Crop, compare_sheet, detailed_crop, metrics_label
from n3cli.errors import UsageError
from n3cli.eval.metrics import psnr
from n3cli.io import Image

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _img(h, w, c=1, seed=0, depth=8):
    rng = np.random.default_rng(seed)
    return Image(pixels=rng.random((h, w, c), dtype=np.float32), bit_depth=depth)


def test_crop_parsing():
    assert Crop.parse("1,2,30,40") == Crop(1, 2, 30, 40)
    for bad in ("1,2,3", "a,b,c,d", "0,0,0,5", "-1,0,4,4"):
        with pytest.raises(UsageError):
            Crop.parse(bad)


def test_detailed_crop_finds_the_textured_corner():
    a = np.zeros((64, 64), np.float32)
    a[40:, 40:] = np.random.default_rng(0).random((24, 24))
    c = detailed_crop(a, 16, 16)
    assert c.x >= 36 and c.y >= 36 and (c.w, c.h) == (16, 16)


def test_sheet_layout_and_nearest_zoom_across_sizes():
    lr, sr = _img(20, 30, 3, seed=1), _img(60, 90, 3, seed=2)
    sheet = np.asarray(compare_sheet([lr, sr], ["lr.png", "sr.png"], crop=Crop(30, 15, 12, 10), zoom=3,
                                     panel_width=200))
    col_w = 90  # full images are 90 wide (the larger), crops 12 * 3 = 36
    assert sheet.shape[1] == GAP + 2 * (col_w + GAP)
    # The second column's zoomed crop is sr[15:25, 30:42] with each pixel 3x3.
    want = np.rint(np.clip(sr.pixels[15:25, 30:42], 0, 1) * 255).astype(np.uint8).repeat(3, 0).repeat(3, 1)
    x0 = GAP + col_w + GAP
    y0 = sheet.shape[0] - GAP - 30
    np.testing.assert_array_equal(sheet[y0:y0 + 30, x0:x0 + 36], want)
    # The low-resolution image was resampled (nearest) to 90 x 60: its crop shows blocks of 3x3.
    lr_crop = sheet[y0:y0 + 30, GAP:GAP + 36]
    assert np.array_equal(lr_crop[0, 0], lr_crop[8, 8])  # one LR pixel = 3 SR pixels = 9 sheet pixels


def test_metrics_label_and_reference_column():
    ref = _img(32, 32, 1, seed=3)
    noisy = Image(pixels=np.clip(ref.pixels + 0.05, 0, 1))
    text = metrics_label(noisy.pixels, ref.pixels)
    assert text.startswith(f"PSNR {psnr(ref.pixels, noisy.pixels):.2f} dB") and "SSIM 0." in text
    assert "n/a" in metrics_label(_img(16, 16).pixels, ref.pixels)
    two = compare_sheet([noisy, ref], ["a", "b"], reference=ref, zoom=2)
    one = compare_sheet([noisy, ref], ["a", "b"], zoom=2)
    assert two.width > one.width and two.height > one.height  # a third column and a metrics line


def test_compare_cli_on_real_files(run, tmp_path):
    den = tmp_path / "camera_denoised.png"
    r = run("denoise", EXAMPLES / "camera_s25.png", "--sigma", "25", "-o", den)
    assert r.exit_code == 0, r.stderr
    # A 16-bit TIFF and an 8-bit colour PNG beside gray 8-bit: all shown, no error.
    out = tmp_path / "sheet.png"
    r = run("compare", EXAMPLES / "camera_s25.png", den, EXAMPLES / "camera16_s25.tif",
            EXAMPLES / "astronaut_s25.png", "-o", out, "--zoom", "3")
    assert r.exit_code == 0, r.stderr
    sheet = PILImage.open(out)
    assert sheet.format == "PNG" and sheet.mode == "RGB" and sheet.width > 4 * 160
    r = run("compare", EXAMPLES / "camera_s25.png", "-o", out, "--reference", den)
    assert r.exit_code == 0, r.stderr
    for args, text in ((["-o", tmp_path / "s.jpg"], "is a PNG"),
                       (["-o", den], "would overwrite an input"),
                       (["-o", out, "--crop", "150,150,40,40"], "outside the 160x160 image"),
                       (["-o", out, "--crop", "1,2"], "is not x,y,w,h")):
        r = run("compare", EXAMPLES / "camera_s25.png", den, *args)
        assert r.exit_code == 2 and text in r.stderr and "Traceback" not in r.stderr
    r = run("compare", EXAMPLES / "camera_s25.png", "-o", out)
    assert r.exit_code == 2 and "nothing to compare" in r.stderr
    r = run("compare", EXAMPLES / "camera_s25.png", tmp_path / "missing.png", "-o", out)
    assert r.exit_code == 2 and "missing.png: no such file" in r.stderr  # a missing input is a usage error


def test_denoise_preview_writes_sheets_that_later_walks_ignore(run, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for f in ("camera_s25.png", "camera16_s25.tif"):
        (src / f).write_bytes((EXAMPLES / f).read_bytes())
    r = run("denoise", src, "--sigma", "25", "--preview")
    assert r.exit_code == 0, r.stderr
    for stem in ("camera_s25", "camera16_s25"):
        sheet = PILImage.open(src / f"{stem}_denoised_preview.png")
        assert sheet.mode == "RGB" and sheet.width > 2 * 96
    r = run("denoise", src, "--sigma", "25", "--dry-run")
    assert "preview sheet of an earlier run" in r.stdout and "2 skipped" in r.stdout
