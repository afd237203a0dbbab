"""``n3 upscale``: single-image super-resolution of files, with everything a batch of
``n3 denoise`` has (it is the same :class:`~n3cli.app.batch.ImageJob`).

The colour planes go through the SR model as its descriptor's packing says (``y``: the
luminance, chroma by bicubic); alpha is upscaled by bicubic, never through the network;
DPI is multiplied by the scale (same print size); EXIF and ICC are carried over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from n3cli.app.batch import ImageJob, ItemResult, JobOptions
from n3cli.errors import UsageError
from n3cli.io.batch import PlanItem

DEFAULT_SR_MODEL = "n3net-sr"


@dataclass
class UpscaleOptions(JobOptions):
    """``n3 upscale``'s options: the shared ones and the scale."""

    scale: int = 2


def upscale_suffix(scale: int) -> str:
    """The default output suffix: ``photo.png`` -> ``photo_x3.png``."""
    return f"_x{scale}"


class Upscaler(ImageJob):
    """Upscales single files by ``opts.scale`` with an SR model."""

    opts: UpscaleOptions

    @property
    def model_name(self) -> str:
        return DEFAULT_SR_MODEL if self.opts.model == "auto" else self.opts.model

    def preload(self) -> None:
        """Fail early (usage error): unknown model, not an SR model, scale not offered."""
        _, spec = self.load(self.model_name, self.opts.scale)
        if spec.descriptor.task != "sr" or spec.descriptor.scale != self.opts.scale:
            raise UsageError(f"'{self.model_name}' is a {spec.descriptor.task} model, it does not upscale",
                             f"use an SR model (default {DEFAULT_SR_MODEL}); see `n3 weights list`")

    def process(self, item: PlanItem) -> ItemResult:
        t0 = time.perf_counter()
        s = self.opts.scale
        img = self.read(item, scale=s)
        notes = list(img.notes)
        name = self.model_name
        model, spec = self.load(name, s)
        out, took, estimate = self.run_engine(model, spec.descriptor, img, {}, name)
        if img.unit_range:
            out = np.clip(out, 0.0, 1.0)  # bicubic and the network overshoot at edges
        alpha = None
        if img.alpha is not None:
            from n3cli.engine.resample import bicubic_resize

            alpha = np.clip(bicubic_resize(img.alpha, img.height * s, img.width * s), 0.0, 1.0)
        meta = img.metadata
        if meta.dpi:
            meta = replace(meta, dpi=(meta.dpi[0] * s, meta.dpi[1] * s))
        result = replace(img, pixels=out, alpha=alpha, metadata=meta)
        notes += self.write(item, img, result)
        return ItemResult(input=str(item.src), output=str(item.dst), status="ok", model=name,
                          image=f"{img.describe()} -> {result.width}x{result.height} (x{s})",
                          seconds=time.perf_counter() - t0, engine_seconds=took,
                          estimated_seconds=estimate, notes=notes)
