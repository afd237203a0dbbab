"""``n3 upscale``: single-image super-resolution of files, with everything a batch of
``n3 denoise`` has (it is the same :class:`~n3cli.app.batch.ImageJob`).

The colour planes go through the SR model as its descriptor's packing says (``y``: the
luminance, chroma by bicubic); a non-opaque alpha plane goes through the same network as
one gray plane, and the colours go premultiplied by it, then are divided back out (so that
the colour of transparent pixels does not bleed into the edges of opaque ones as a dark
or coloured fringe); DPI is multiplied by the scale (same print size); EXIF and ICC are
carried over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from n3cli.app.batch import ImageJob, ItemResult, JobOptions, clip_like
from n3cli.errors import UsageError
from n3cli.io.batch import PlanItem

DEFAULT_SR_MODEL = "n3net-sr"


@dataclass
class UpscaleOptions(JobOptions):
    """``n3 upscale``'s options: the shared ones and the scale."""

    scale: int = 2


# Below this upscaled alpha (a 1/255 step is 0.0039) the colour is mostly overshoot of the
# division: the plain bicubic of the unweighted colour stands in for it.
MIN_ALPHA = 1.0 / 64


def unpremultiply(out: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Divide upscaled premultiplied ``out`` by the upscaled ``alpha``; where alpha is
    (almost) zero, the colour is undefined and the bicubic upscale of the original
    ``colour`` is kept instead (editors may still reveal it)."""
    from n3cli.engine.resample import bicubic_resize

    a = alpha[..., None]
    solid = a >= MIN_ALPHA
    fallback = bicubic_resize(colour, alpha.shape[0], alpha.shape[1]).reshape(out.shape)
    return np.where(solid, out / np.maximum(a, MIN_ALPHA), fallback).astype(np.float32)


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
        desc = spec.descriptor
        alpha, took_a = None, 0.0
        if img.alpha is not None and float(img.alpha.min()) >= 1.0:  # opaque: nothing to weigh
            alpha = np.ones((img.height * s, img.width * s), np.float32)
        elif img.alpha is not None:
            # The alpha plane goes through the same network as the colours, so that an edge
            # keeps one profile in both (a bicubic alpha under a sharper colour edge leaves a
            # fringe); the colours go premultiplied (a transparent pixel's colour, often
            # black, must weigh nothing in its opaque neighbours' new pixels).
            plane = replace(img, pixels=img.alpha[..., None], alpha=None)
            up, took_a, _ = self.run_engine(model, desc, plane, {}, name)
            alpha = np.clip(up.reshape(img.height * s, img.width * s), 0.0, 1.0)
        if img.alpha is None or img.premultiplied or alpha.min() >= 1.0:
            out, took, estimate = self.run_engine(model, desc, img, {}, name)
        else:  # unassociated alpha
            weighted = replace(img, pixels=img.pixels * img.alpha[..., None])
            out, took, estimate = self.run_engine(model, desc, weighted, {}, name)
            out = unpremultiply(out, alpha, img.pixels)
        took += took_a
        out = clip_like(out, img, alpha)
        meta = img.metadata
        if meta.dpi:
            meta = replace(meta, dpi=(meta.dpi[0] * s, meta.dpi[1] * s))
        result = replace(img, pixels=out, alpha=alpha, metadata=meta)
        notes += self.write(item, img, result)
        return ItemResult(input=str(item.src), output=str(item.dst), status="ok", model=name,
                          image=f"{img.describe()} -> {result.width}x{result.height} (x{s})",
                          seconds=time.perf_counter() - t0, engine_seconds=took,
                          estimated_seconds=estimate, notes=notes)
