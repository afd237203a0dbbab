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


class _Notes:
    """A reporter that keeps the job's one-line notes."""

    def __init__(self):
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)

    def item_started(self, *a) -> None: ...

    def item_finished(self, *a) -> None: ...

    def tiles(self, *a) -> None: ...


def test_a_small_tile_is_costed_and_said(tiny, tmp_path):
    """``--tile 16`` re-reads the model's context around every core: the estimate (the
    prior too, before any file was timed) counts that work, and the job says so, once."""
    from n3cli.engine import tiling

    pixels = np.random.default_rng(0).random((400, 400, 1), dtype=np.float32)
    write_image(tmp_path / "a.png", Image(pixels=pixels))
    notes = _Notes()
    small = Denoiser(DenoiseOptions(sigma=25, model="tiny-s25", device="cpu", tile=16), notes)
    whole = Denoiser(DenoiseOptions(sigma=25, model="tiny-s25", device="cpu", tile=0))
    model, spec = small.load("tiny-s25")
    d = spec.descriptor
    img = small.read(PlanItem(tmp_path / "a.png", tmp_path / "a_out.png"))
    work = sum(t.area for t in tiling.plan_tiles(400, 400, 16, d.halo, d.tile_quantum, d.min_size)) / 400 ** 2
    assert work >= 3  # the premise: this tile is wasteful for this model
    cond = {"sigma": 25 / 255}
    ratio = (small.estimate_engine_seconds(model, d, img, cond, "tiny-s25")
             / whole.estimate_engine_seconds(model, d, img, cond, "tiny-s25"))
    assert ratio == pytest.approx(work, rel=1e-6)
    small.process(PlanItem(tmp_path / "a.png", tmp_path / "a_out.png"))
    small.process(PlanItem(tmp_path / "a.png", tmp_path / "a_again.png"))  # said once per job
    said = [n for n in notes.notes if "--tile 16" in n]
    assert len(said) == 1 and f"{work:.0f}x the work" in said[0]
    whole.reporter = notes
    notes.notes.clear()
    whole.process(PlanItem(tmp_path / "a.png", tmp_path / "b_out.png"))
    assert not [n for n in notes.notes if "--tile" in n]
