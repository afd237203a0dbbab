"""Every bad input ends in one clear line naming the problem, the right exit code, and
no traceback. The table runs through the real CLI (CliRunner); a few cases also as a
real process."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from cli_helpers import TINY_SCRIPT, save_gray, save_rgb
from PIL import Image as PILImage

import torch


def _huge_png(p: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
                  + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def _corrupt_jpeg(p: Path) -> None:
    save_rgb(p, 48, 48)
    data = bytearray(p.read_bytes())
    data[len(data) // 2:len(data) // 2 + 400] = b"\x00" * 400
    p.write_bytes(bytes(data[: len(data) * 3 // 4]))


def _setup(tmp: Path, case: str) -> None:
    """Create the files a case needs in ``tmp``."""
    if case == "truncated":
        save_gray(tmp / "t.png", 48, 48)
        (tmp / "t.png").write_bytes((tmp / "t.png").read_bytes()[:100])
    elif case == "corrupt_jpeg":
        _corrupt_jpeg(tmp / "c.jpg")
    elif case == "huge":
        _huge_png(tmp / "huge.png")
    elif case == "int32_tiff":
        tifffile.imwrite(tmp / "i.tif", np.arange(12, dtype=np.int32).reshape(3, 4))
    elif case == "out_is_dir":
        save_gray(tmp / "a.png")
        (tmp / "a_denoised.png").mkdir()
    elif case == "wide":
        save_gray(tmp / "wide.png", 2, 65600)
    elif case == "unwritable":
        save_gray(tmp / "a.png")
        (tmp / "blocker").write_text("a file, not a folder")
    else:
        save_gray(tmp / "a.png")
        save_gray(tmp / "one.png", 1, 1)
        (tmp / "empty.png").write_bytes(b"")
        (tmp / "text.png").write_text("just some text\n")
        (tmp / "doc.pdf").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
        (tmp / "cam.KDC").write_bytes(b"\x00" * 64)
        (tmp / "nothing_here").mkdir()
        os.mkfifo(tmp / "pipe.png")


CASES = [
    # id, args (TMP/ is the case folder), exit code, text in the error line
    ("missing file", ["TMP/missing.png", "-s", "25"], 2, "missing.png: no such file"),
    ("empty folder", ["TMP/nothing_here", "-s", "25"], 2, "no images found in"),
    ("output is a folder", ["TMP/a.png", "-s", "25"], 2, "a_denoised.png is a directory"),
    ("empty file", ["TMP/empty.png", "-s", "25"], 1, "empty.png: empty file"),
    ("truncated png", ["TMP/t.png", "-s", "25"], 1, "t.png: truncated or corrupt"),
    ("corrupt jpeg", ["TMP/c.jpg", "-s", "25"], 1, "c.jpg: "),
    ("text named .png", ["TMP/text.png", "-s", "25"], 1, "text.png: not an image (text contents"),
    ("pdf", ["TMP/doc.pdf", "-s", "25"], 1, "doc.pdf: not an image"),
    ("fifo", ["TMP/pipe.png", "-s", "25"], 1, "pipe.png: not a regular file"),
    ("int32 tiff", ["TMP/i.tif", "-s", "25"], 1, "i.tif: corrupt or unsupported image"),
    ("absurd size", ["TMP/huge.png", "-s", "25"], 1, "huge.png: 100000x100000 is 10000.0 MP"),
    ("1x1 needs sigma", ["TMP/one.png"], 2, "one.png: 1x1 is too small to estimate"),
    ("negative sigma", ["TMP/a.png", "-s", "-5"], 2, "--sigma -5 is out of range"),
    ("huge sigma", ["TMP/a.png", "-s", "300"], 2, "--sigma 300 is out of range"),
    ("sigma not a number", ["TMP/a.png", "-s", "lots"], 2, "--sigma 'lots' is not a number"),
    ("sigma outside blind range", ["TMP/a.png", "-s", "90", "-m", "tiny-blind-color"], 2,
     "outside tiny-blind-color's range 0..75"),
    ("unknown model", ["TMP/a.png", "-s", "25", "-m", "nope"], 2, "unknown model 'nope'"),
    ("sr model to denoise", ["TMP/a.png", "-s", "25", "-m", "tiny-sr"], 2,
     "'tiny-sr' is an sr model, it does not denoise"),
    ("corrupt camera raw", ["TMP/cam.KDC", "-s", "25"], 1, "cam.KDC: not a camera raw LibRaw can decode"),
    ("--raw on an image", ["TMP/a.png", "--raw"], 2, "a.png: not a camera raw file (--raw)"),
    ("unwritable output", ["TMP/a.png", "-s", "25", "-o", "TMP/blocker/out.png"], 1,
     "out.png: cannot create directory"),
    ("in-place with -o", ["TMP/a.png", "--in-place", "-o", "TMP/x"], 2, "--in-place"),
    ("-o file for many", ["TMP/a.png", "TMP/one.png", "-s", "25", "-o", "TMP/r.png"], 2, "names one file"),
    ("bad tile", ["TMP/a.png", "-s", "25", "--tile", "big"], 2, "--tile 'big'"),
    ("tiny tile", ["TMP/a.png", "-s", "25", "--tile", "3"], 2, "tile 3 px is below the smallest tile"),
    ("bad max-pixels", ["TMP/a.png", "-s", "25", "--max-pixels", "many"], 2, "--max-pixels 'many'"),
    ("bad max-memory", ["TMP/a.png", "-s", "25", "--max-memory", "lots"], 2, "--max-memory 'lots'"),
    ("no input", [], 2, "no input given"),
    ("suffix with a folder", ["TMP/a.png", "-s", "25", "--suffix", "/x"], 2, "--suffix '/x' is not part of a file name"),
    ("dng name for an image", ["TMP/a.png", "-s", "25", "-o", "TMP/a.dng"], 2, "a.png is not a camera raw"),
    ("a file as a folder", ["TMP/a.png", "-s", "25", "-o", "TMP/one.png/"], 2, "one.png is a file, not a folder"),
    ("a format n3 cannot write", ["TMP/a.png", "-s", "25", "-o", "TMP/x.heic"], 2, "cannot write .heic"),
    ("wider than JPEG holds", ["TMP/wide.png", "-s", "25", "-o", "TMP/w.jpg"], 1,
     "JPEG holds at most 65,500 pixels per side, the output is 65600x2"),
]
if not torch.cuda.is_available():
    CASES.append(("cuda absent", ["TMP/a.png", "-s", "25", "--device", "cuda"], 2, "CUDA was requested"))

_SETUP = {"truncated png": "truncated", "corrupt jpeg": "corrupt_jpeg", "absurd size": "huge",
          "int32 tiff": "int32_tiff", "output is a folder": "out_is_dir", "unwritable output": "unwritable",
          "wider than JPEG holds": "wide"}


def _args(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("TMP/", f"{tmp}/") for a in args]


@pytest.mark.parametrize("case,args,code,text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_table(tmp_path, tiny, run, case, args, code, text):
    _setup(tmp_path, _SETUP.get(case, "common"))
    r = run("denoise", *_args(args, tmp_path))
    assert r.exit_code == code, r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("n3: error:")]
    assert len(errors) == 1, r.stderr
    assert text in errors[0], errors[0]
    assert "Traceback" not in r.output
    assert not list(tmp_path.rglob("*.tmp"))


def test_tiny_images_work(tmp_path, tiny, run):
    for shape in [(1, 1), (2, 3), (1, 9), (7, 1)]:
        save_gray(tmp_path / f"t{shape[0]}x{shape[1]}.png", *shape)
    save_rgb(tmp_path / "c.png", 1, 1)
    r = run("denoise", tmp_path, "-s", "25")
    assert r.exit_code == 0, r.output
    assert "5 succeeded" in r.stderr
    assert PILImage.open(tmp_path / "t1x9_denoised.png").size == (9, 1)


def test_missing_weights_say_how_to_get_them(tmp_path, run, monkeypatch):
    """The real weights store, empty, and no bundled models (as in an install without the
    repo's weights/): explicit and automatic model choice both explain."""
    import n3cli.weights.store as store

    monkeypatch.setenv("N3_HOME", str(tmp_path / "store"))
    (tmp_path / "no-bundle").mkdir()
    monkeypatch.setattr(store, "bundled_dir", lambda: tmp_path / "no-bundle")
    save_gray(tmp_path / "a.png")
    r = run("denoise", tmp_path / "a.png", "-s", "25", "-m", "n3net-paper-s25")
    assert r.exit_code == 2 and "not installed" in r.stderr and "n3 weights fetch paper" in r.stderr
    r = run("denoise", tmp_path / "a.png", "-s", "25")
    assert r.exit_code == 2 and "no installed model" in r.stderr and "n3 weights" in r.stderr


def _proc(*args, **env):
    e = {**os.environ, **{k: str(v) for k, v in env.items()}}
    return subprocess.run([sys.executable, str(TINY_SCRIPT), *map(str, args)],
                          capture_output=True, text=True, env=e, timeout=120)


def test_real_process_exit_codes(tmp_path):
    _setup(tmp_path, "common")
    cases = [(["denoise", tmp_path / "missing.png", "-s", "25"], 2, "no such file"),
             (["denoise", tmp_path / "text.png", "-s", "25"], 1, "not an image"),
             (["denoise", tmp_path / "a.png", "-s", "-1"], 2, "out of range"),
             (["denoise", tmp_path / "a.png", "-s", "25"], 0, "a_denoised.png")]
    for args, code, text in cases:
        p = _proc(*args)
        assert p.returncode == code, p.stderr
        assert text in p.stderr and "Traceback" not in p.stderr
    # Click's own parsing errors are one line too, pointing at the command's help.
    for args, text in ((["upscale", tmp_path / "a.png", "--scale", "5"], "'5' is not one of '2', '3', '4'"),
                       (["upscale", tmp_path / "a.png"], "Missing option '-s' / '--scale'. Choose from: 2, 3, 4"),
                       (["denoise", "--bogus"], "No such option '--bogus': see 'n3 denoise --help'"),
                       (["bogus"], "No such command 'bogus': see 'n3 --help'"),
                       (["--bogus"], "No such option '--bogus': see 'n3 --help'")):
        p = _proc(*args)
        assert p.returncode == 2 and p.stderr.startswith("n3: error:") and text in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    # A bare group shows its help, formatted (Click >= 8.2 raises it as a usage error).
    for args in ([], ["weights"]):
        p = _proc(*args)
        assert p.returncode in (0, 2) and "Usage: n3" in p.stdout + p.stderr, p.stderr
        assert "\nCommands:\n" in p.stdout + p.stderr and "n3: error" not in p.stderr
    # --debug shows the traceback and keeps the error's exit code.
    p = _proc("--debug", "denoise", tmp_path / "missing.png", "-s", "25")
    assert p.returncode == 2 and "Traceback" in p.stderr and "no such file" in p.stderr


def test_real_camera_raw_is_refused_where_it_cannot_go(shared_file, tmp_path):
    raw = shared_file("raw/RAW_KODAK_DC50.KDC")
    p = subprocess.run([sys.executable, "-m", "n3cli", "upscale", str(raw), "--scale", "2", "-o", str(tmp_path / "x.png")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "only n3 denoise reads raw files" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1    # A truncated raw: n3's one line, nothing from LibRaw or tifffile (which print their own).
    short = tmp_path / "short.KDC"
    short.write_bytes(raw.read_bytes()[:1000])
    p = subprocess.run([sys.executable, "-m", "n3cli", "denoise", str(short), "--threads", "1"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "truncated or corrupt raw file" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_a_closed_pipe_is_not_an_internal_error(tmp_path):
    """`n3 denoise folder --dry-run | head -1`: the reader left; n3 stops without a word."""
    for i in range(300):
        save_gray(tmp_path / f"p{i:03d}.png", 4, 4)
    p = subprocess.Popen([sys.executable, str(TINY_SCRIPT), "denoise", str(tmp_path), "--dry-run", "-s", "25"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()  # before n3 writes its plan
    err = p.stderr.read()
    p.wait(timeout=120)
    assert "internal error" not in err and "Traceback" not in err, err
