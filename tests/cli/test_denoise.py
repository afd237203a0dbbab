"""``n3 denoise`` through the real CLI, with a tiny random-weight model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import png
import tifffile
from cli_helpers import save_gray, save_rgb
from PIL import Image as PILImage

from n3cli.io import read_image


def test_single_gray_png(tmp_path, tiny, run):
    src = save_gray(tmp_path / "a.png")
    r = run("denoise", src, "--sigma", "25")
    assert r.exit_code == 0, r.output
    out = PILImage.open(tmp_path / "a_denoised.png")
    assert out.mode == "L" and out.size == (31, 24)
    assert "model tiny-s25" in r.stderr and r.stdout == ""


def test_sigma_auto_is_default_and_said(tmp_path, tiny, run):
    src = save_gray(tmp_path / "a.png", 40, 40)
    r = run("denoise", src)
    assert r.exit_code == 0, r.output
    assert "--sigma auto" in r.stderr and "estimated" in r.stderr


def test_no_sigma_note_only_when_sigma_was_left_out_and_work_remains(tmp_path, tiny, run):
    src = save_gray(tmp_path / "a.png", 40, 40)
    r = run("denoise", src, "--sigma", "auto")  # said explicitly: no reminder
    assert r.exit_code == 0 and "no --sigma given" not in r.stderr and "estimated" in r.stderr
    r = run("denoise", src)  # every file skipped: nothing is estimated
    assert r.exit_code == 0 and "skipped" in r.stderr and "no --sigma given" not in r.stderr
    r = run("denoise", src, "--overwrite")
    assert "no --sigma given" in r.stderr


def test_16bit_rgb_alpha_stays_16bit_and_alpha_untouched(tmp_path, tiny, run):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 65536, (24, 31, 4), dtype=np.uint16)
    with open(tmp_path / "in.png", "wb") as f:
        png.Writer(31, 24, greyscale=False, alpha=True, bitdepth=16).write(f, a.reshape(24, -1))
    r = run("denoise", tmp_path / "in.png", "-s", "25", "-o", tmp_path / "out.png")
    assert r.exit_code == 0, r.output
    w, h, rows, info = png.Reader(filename=str(tmp_path / "out.png")).asDirect()
    out = np.vstack(list(rows)).reshape(24, 31, 4)
    assert info["bitdepth"] == 16 and info["alpha"]
    np.testing.assert_array_equal(out[..., 3], a[..., 3])
    assert np.any(out[..., :3] % 257 != 0)
    assert "colour model" in r.stderr  # gray model on colour: the hint


def test_float_tiff_and_jpeg_keep_their_format(tmp_path, tiny, run):
    tifffile.imwrite(tmp_path / "f.tif", np.random.default_rng(0).random((24, 31), dtype=np.float32))
    save_rgb(tmp_path / "p.jpg", quality=90)
    r = run("denoise", tmp_path / "f.tif", tmp_path / "p.jpg", "-s", "25")
    assert r.exit_code == 0, r.output
    assert tifffile.imread(tmp_path / "f_denoised.tif").dtype == np.float32
    assert PILImage.open(tmp_path / "p_denoised.jpg").format == "JPEG"


def test_format_and_suffix_and_output_dir(tmp_path, tiny, run):
    save_gray(tmp_path / "a.png")
    r = run("denoise", tmp_path / "a.png", "-s", "25", "--format", "tiff", "--suffix", "_x",
            "-o", tmp_path / "res")
    assert r.exit_code == 0, r.output
    assert read_image(tmp_path / "res" / "a_x.tif").format == "tiff"


def test_recursive_mirror_resume_and_overwrite(tmp_path, tiny, run):
    for rel in ["a.png", "s/b.png", "s/t/c.png", ".DS_Store", "s/readme.txt"]:
        save_gray(tmp_path / "in" / rel) if rel.endswith(".png") else (tmp_path / "in" / rel).write_text("x")
    out = tmp_path / "out"
    r = run("denoise", tmp_path / "in", "-o", out, "-r", "-s", "25")
    assert r.exit_code == 0, r.output
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert made == ["a_denoised.png", "s/b_denoised.png", "s/t/c_denoised.png"]
    assert "3 succeeded, 0 skipped, 0 failed" in r.stderr and "ignored" in r.stderr
    before = (out / "a_denoised.png").stat().st_mtime_ns
    r = run("denoise", tmp_path / "in", "-o", out, "-r", "-s", "25")
    assert r.exit_code == 0 and "0 succeeded, 3 skipped" in r.stderr
    assert (out / "a_denoised.png").stat().st_mtime_ns == before
    r = run("denoise", tmp_path / "in", "-o", out, "-r", "-s", "25", "--overwrite")
    assert "3 succeeded" in r.stderr


def test_in_place_and_refusing_to_overwrite_input(tmp_path, tiny, run):
    src = save_gray(tmp_path / "a.png")
    original = src.read_bytes()
    r = run("denoise", src, "-s", "25", "-o", src, "--overwrite")
    assert r.exit_code == 2 and "overwrite an input" in r.stderr and src.read_bytes() == original
    r = run("denoise", src, "-s", "25", "--in-place")
    assert r.exit_code == 0, r.output
    assert src.read_bytes() != original and sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@pytest.mark.parametrize("option,value,text", [("--tile", "8", "below the smallest tile"),
                                                 ("--max-memory", "lots", "--max-memory 'lots'")])
def test_dry_run_refuses_the_engine_options_the_real_run_refuses(tmp_path, tiny, run, option, value, text):
    """docs/CLI.md: `--tile` below 16 px is refused, a usage error (exit 2), in a dry run too."""
    src = save_gray(tmp_path / "a.png")
    for extra in ([], ["--dry-run"]):
        r = run("denoise", src, "-s", "25", option, value, *extra)
        assert r.exit_code == 2 and text in r.stderr, (extra, r.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_json_report_and_dry_run(tmp_path, tiny, run):
    save_gray(tmp_path / "a.png")
    (tmp_path / "b.png").write_text("not an image")
    r = run("denoise", tmp_path, "--dry-run", "-s", "25")
    assert r.exit_code == 0 and "a_denoised.png" in r.stdout and "dry run" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
    r = run("denoise", tmp_path / "a.png", "-s", "25", "-o", tmp_path / "a.png", "--dry-run")
    assert r.exit_code == 2 and "would overwrite an input" in r.stdout  # as the real run: a usage error
    r = run("denoise", tmp_path, "-s", "25", "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["summary"] == {"succeeded": 1, "skipped": 0, "failed": 1, "ignored": 0, "interrupted": False}
    failed = [i for i in doc["items"] if i["status"] == "failed"][0]
    assert failed["input"].endswith("b.png") and "not an image" in failed["reason"]
    ok = [i for i in doc["items"] if i["status"] == "ok"][0]
    assert ok["model"] == "tiny-s25" and ok["sigma"] == 25.0 and ok["sigma_source"] == "given"
    assert "n3: failed" in r.stderr and "b.png" in r.stderr  # --json replaces the table, not the failures
    r = run("denoise", tmp_path / "b.png", "-s", "25", "--json")  # one input: its error line, and the report
    assert r.exit_code == 1 and r.stderr.startswith("n3: error:") and "not an image" in r.stderr
    assert json.loads(r.stdout)["summary"]["failed"] == 1


def test_an_estimate_outside_the_blind_range_reports_what_was_used(tmp_path, tiny, run):
    save_rgb(tmp_path / "n.png", 48, 48)  # uniform random pixels: an estimate far above 75
    r = run("denoise", tmp_path / "n.png", "-m", "tiny-blind-color", "--json")
    assert r.exit_code == 0, r.output
    item = json.loads(r.stdout)["items"][0]
    assert item["sigma_source"] == "estimated" and item["sigma"] > 75 and item["sigma_used"] == 75.0
    r = run("denoise", tmp_path / "n.png", "-m", "tiny-blind-color", "--overwrite")
    assert "75 used" in r.stderr
    r = run("denoise", tmp_path / "n.png", "-m", "tiny-blind-color", "-s", "20", "--overwrite", "--json")
    assert json.loads(r.stdout)["items"][0]["sigma_used"] == 20.0


def test_batch_of_50_with_broken_files(tmp_path, tiny, run):
    broken = {7: b"", 23: b"garbage" * 10, 41: None}
    for i in range(50):
        p = tmp_path / f"img{i:02d}.png"
        if i in broken and broken[i] is not None:
            p.write_bytes(broken[i])
        elif i in broken:
            save_gray(p, seed=i)
            p.write_bytes(p.read_bytes()[:60])  # truncated
        else:
            save_gray(p, seed=i)
    r = run("denoise", tmp_path, "-s", "25", "-o", tmp_path / "out")
    assert r.exit_code == 1
    assert "47 succeeded, 0 skipped, 3 failed" in r.stderr
    for i in broken:
        assert f"img{i:02d}.png" in r.stderr
    outs = sorted((tmp_path / "out").iterdir())
    assert len(outs) == 47 and all(PILImage.open(p).size == (31, 24) for p in outs)


def test_gray_image_through_a_colour_model(tmp_path, tiny, run):
    src = save_gray(tmp_path / "g.png")
    r = run("denoise", src, "-s", "25", "--model", "tiny-blind-color")
    assert r.exit_code == 0, r.output
    assert PILImage.open(tmp_path / "g_denoised.png").mode == "L"


def test_debug_shows_the_real_exception(tmp_path, tiny, run):
    (tmp_path / "x.png").write_text("nope")
    r = run("--debug", "denoise", tmp_path / "x.png", "-s", "25")
    # The traceback of the real exception, and still its exit code (1: a failed file).
    assert r.exit_code == 1 and "Traceback" in r.stderr and "ImageReadError" in r.stderr


def test_progress_flag_does_not_break_output(tmp_path, tiny, run):
    save_gray(tmp_path / "a.png")
    save_gray(tmp_path / "b.png")
    r = run("denoise", tmp_path, "-s", "25", "--progress")
    assert r.exit_code == 0, r.output


def test_metadata_and_orientation_through_the_cli(tmp_path, tiny, run):
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    a = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    pim = PILImage.fromarray(a)
    exif = pim.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    exif[0x010F] = "TestCam"
    pim.save(tmp_path / "p.png", exif=exif, icc_profile=srgb, dpi=(200, 200))
    r = run("denoise", tmp_path / "p.png", "-s", "25")
    assert r.exit_code == 0, r.output
    out = PILImage.open(tmp_path / "p_denoised.png")
    assert out.size == (20, 30)  # written upright
    assert out.getexif().get(0x0112) == 1 and out.getexif().get(0x010F) == "TestCam"
    assert out.info.get("icc_profile") == srgb and out.info["dpi"] == pytest.approx((200, 200), abs=0.01)
    r = run("denoise", tmp_path / "p.png", "-s", "25", "--strip-metadata", "--suffix", "_bare")
    bare = PILImage.open(tmp_path / "p_bare.png")
    assert bare.size == (20, 30) and not bare.getexif() and "icc_profile" not in bare.info


def test_unicode_and_spaces_in_names(tmp_path, tiny, run):
    src = save_gray(tmp_path / "Fotos März" / "ünï cödé (1).png")
    r = run("denoise", tmp_path / "Fotos März", "-s", "25", "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "Fotos März" / "ünï cödé (1)_denoised.png").is_file()
    assert json.loads(r.stdout)["items"][0]["input"] == str(src)


def test_ensemble_option_changes_the_result_and_rejects_bad_sizes(tmp_path, tiny, run):
    src = save_gray(tmp_path / "a.png", 40, 40)
    assert run("denoise", src, "-s", "25", "-o", tmp_path / "one.png").exit_code == 0
    r = run("denoise", src, "-s", "25", "--ensemble", "8", "-o", tmp_path / "eight.png")
    assert r.exit_code == 0, r.output
    one = np.asarray(PILImage.open(tmp_path / "one.png"), dtype=np.int16)
    eight = np.asarray(PILImage.open(tmp_path / "eight.png"), dtype=np.int16)
    assert one.shape == eight.shape and np.abs(one - eight).max() > 0
    bad = run("denoise", src, "-s", "25", "--ensemble", "3")
    assert bad.exit_code != 0 and "Traceback" not in bad.output
