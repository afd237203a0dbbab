"""Both bundled models from ``weights/``, through the CLI, on the bundled examples; and the
core denoise path with every optional package blocked (only runtime dependencies)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from import_blocker import blocked_run_code
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def _clean(name: str) -> np.ndarray:
    """The clean crops ``examples/make_examples.py`` added noise to."""
    from skimage import data

    return {"camera": data.camera()[60:220, 180:340], "astronaut": data.astronaut()[40:168, 170:298]}[name]


@pytest.mark.parametrize("model,example,clean", [("n3net-blind", "camera_s25.png", "camera"),
                                                 ("n3net-blind-color", "astronaut_s25.png", "astronaut")])
def test_bundled_model_denoises_its_example(run, tmp_path, model, example, clean):
    out = tmp_path / "out.png"
    r = run("denoise", EXAMPLES / example, "--sigma", "25", "--model", model, "-o", out, "--json")
    assert r.exit_code == 0, r.stderr
    item = json.loads(r.stdout)["items"][0]
    assert item["status"] == "ok" and item["model"] == model
    noisy, result = np.asarray(PILImage.open(EXAMPLES / example)), np.asarray(PILImage.open(out))
    assert result.shape == noisy.shape
    before, after = _psnr(noisy, _clean(clean)), _psnr(result, _clean(clean))
    assert after > before + 6.0, (model, before, after)  # about +8 dB for both models


def test_the_raw_model_refuses_an_image_in_one_line(run, tmp_path):
    """n3net-raw takes Bayer planes and (a, b) maps: on a PNG it says so, writes nothing."""
    r = run("denoise", EXAMPLES / "camera_s25.png", "--sigma", "25", "--model", "n3net-raw", "-o", tmp_path / "x.png")
    assert r.exit_code == 2 and "'n3net-raw' is a raw-denoise model, it cannot denoise an image" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "x.png").exists()


def _optional_modules() -> set[str]:
    """Top-level modules of every package only the extras (test, dev) pull in, plus OpenCV."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]}
    extras = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
              for deps in project["optional-dependencies"].values() for d in deps}
    by_dist: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            by_dist.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    blocked = {"cv2", "skimage", "png", "bm3d"}
    for dist in extras - runtime - {"n3cli"}:
        blocked |= by_dist.get(dist, set())
    return blocked - {"_pytest"} | {"pytest", "_pytest"}


BLOCKER = blocked_run_code("n3cli", "n3")


def test_core_denoise_needs_only_runtime_dependencies(tmp_path):
    """8-bit PNG, 16-bit PNG and 16-bit TIFF, gray and colour, model auto, with pytest,
    hypothesis, pypng, scikit-image, OpenCV, bm3d (whatever the extras add) unimportable."""
    from n3cli.io import read_image, write_image

    blocked = _optional_modules()
    assert {"pytest", "hypothesis", "png", "skimage", "cv2"} <= blocked
    src = tmp_path / "in"
    src.mkdir()
    for f in ("camera_s25.png", "astronaut_s25.png", "camera16_s25.tif"):
        (src / f).write_bytes((EXAMPLES / f).read_bytes())
    write_image(src / "camera16_s25.png", read_image(EXAMPLES / "camera16_s25.tif"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", BLOCKER, ",".join(sorted(blocked)), "denoise", str(src),
                           "-o", str(tmp_path / "out"), "--sigma", "25", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["summary"]["succeeded"] == 4 and doc["summary"]["failed"] == 0
    back = read_image(tmp_path / "out" / "camera16_s25_denoised.png")
    assert back.bit_depth == 16 and back.pixels.shape == (96, 96, 1)
