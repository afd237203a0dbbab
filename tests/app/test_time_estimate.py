"""The time estimate is calibrated per model and channel count: after a large file, the
next estimate for the same size is that file's measured engine time (no clock involved in
the assertion: the rate is stored, then reused)."""

from __future__ import annotations

import numpy as np
import pytest

from n3cli.app.batch import DenoiseOptions, Denoiser
from n3cli.io import Image, write_image
from n3cli.io.batch import PlanItem


def test_estimate_uses_the_last_large_files_rate(tiny, tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        write_image(tmp_path / name, Image(pixels=rng.random((560, 520, 1), dtype=np.float32)))
    job = Denoiser(DenoiseOptions(sigma=25, model="tiny-s25", device="cpu", tile=0))
    first = job.process(PlanItem(tmp_path / "a.png", tmp_path / "a_out.png"))
    model, spec = job.load("tiny-s25")
    img = job.read(PlanItem(tmp_path / "b.png", tmp_path / "b_out.png"))
    again = job.estimate_engine_seconds(model, spec.descriptor, img, {"sigma": 25 / 255}, "tiny-s25")
    assert again == pytest.approx(first.engine_seconds, rel=1e-9)  # same size and model: the measured time
    assert first.estimated_seconds is not None and first.estimated_seconds != first.engine_seconds
