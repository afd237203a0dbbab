"""Camera raw denoising: a Bayer mosaic in, a DNG of the denoised mosaic out (or, asked
for by the output's name, ``-o IMG.tif|png``, that DNG's sRGB rendering alone).

The noise model of a file is Poisson-Gaussian per CFA plane, ``variance = a*x + b`` in
normalised units, from (first that applies) ``--noise``, the DNG NoiseProfile tag, or
an estimate from the image itself (:func:`n3cli.data.pg_noise.estimate_pg`). The model's
descriptor names the conditioning it takes and
:func:`n3cli.engine.runner.pg_conditions` turns the noise model into exactly those maps: ``a`` and ``b`` for a raw model, or a per-pixel ``sigma``
map (``sqrt(a*x + b)``) for a Gaussian blind denoiser, which is how the bundled
``n3net-blind`` denoises raw files while no raw model is installed. The engine then runs
the four half-resolution planes one at a time, each with its own noise model.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from n3cli.errors import ModelNotFoundError, UsageError

DEFAULT_RAW_MODEL = "n3net-raw"
FALLBACK_RAW_MODEL = "n3net-blind"  # with a per-pixel sigma map, until a raw model is installed
RENDER_FORMATS = ("tiff", "png")


@dataclass(frozen=True)
class NoiseModel:
    """(a, b) for each of the four CFA planes (position order) and where it came from:
    "given", "dng-noise-profile" or "estimated"."""

    planes: tuple[tuple[float, float], ...]
    source: str

    def to_list(self) -> list[list[float]]:
        return [[float(f"{a:.6g}"), float(f"{b:.6g}")] for a, b in self.planes]

    def describe(self) -> str:
        a = [p[0] for p in self.planes]
        b = [p[1] for p in self.planes]
        return f"a {min(a):.3g}..{max(a):.3g}, b {min(b):.3g}..{max(b):.3g} ({self.source})"


def parse_noise(text: str) -> tuple[tuple[float, float], ...]:
    """``--noise a,b`` (every plane) or ``a1,b1,...,a4,b4`` (per CFA position)."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UsageError(f"bad --noise '{text}'", "give a,b or a1,b1,a2,b2,a3,b3,a4,b4 (numbers)") from None
    if len(values) not in (2, 8):
        raise UsageError(f"--noise takes 2 or 8 numbers, not {len(values)}",
                         "a,b for every plane or one pair per CFA position")
    if not all(np.isfinite(values)):
        raise UsageError(f"--noise {text}: every value must be a finite number", "e.g. --noise 0.001,1e-5")
    pairs = tuple(zip(values[::2], values[1::2]))
    if any(a < 0 for a, _ in pairs) or any(a + b <= 0 for a, b in pairs):
        raise UsageError(f"--noise {text}: a must be >= 0 and a + b > 0", "e.g. --noise 0.001,1e-5")
    return pairs * 4 if len(pairs) == 1 else pairs


def noise_model(raw, given: tuple[tuple[float, float], ...] | None = None) -> NoiseModel:
    """The noise of ``raw`` (a :class:`~n3cli.io.raw.RawMosaic`): given, from the DNG
    NoiseProfile (one pair for all planes, one per colour, or one per position), or
    estimated on each plane."""
    if given:
        return NoiseModel(tuple(given), "given")
    profile = raw.metadata.noise_profile
    if profile:
        pairs = _profile_per_position(profile, raw.cfa)
        if pairs is not None:
            return NoiseModel(pairs, "dng-noise-profile")
    from n3cli.data.estimate import TooSmallError
    from n3cli.data.pg_noise import estimate_pg

    pairs = []
    for plane in raw.planes:
        try:
            e = estimate_pg(np.clip(plane, 0.0, 1.0))
        except (TooSmallError, ValueError) as err:
            raise UsageError(f"{raw.source}: cannot estimate the noise ({err})", "give --noise a,b") from None
        pairs.append((float(e.a), float(e.b)))
    return NoiseModel(tuple(pairs), "estimated")


def _profile_per_position(profile, cfa: str) -> tuple[tuple[float, float], ...] | None:
    pairs = tuple((float(a), float(b)) for a, b in profile)
    if len(pairs) == 1:
        return pairs * 4
    if len(pairs) == 4:
        return pairs
    if len(pairs) == 3:  # per colour plane R, G, B (DNG CFAPlaneColor order)
        return tuple(pairs["RGB".index(c)] for c in cfa)
    return None


class RawJob:
    """The raw half of :class:`~n3cli.app.batch.Denoiser`: it shares the job's model cache,
    engine runner and options (``noise``, ``render``)."""

    def __init__(self, job):
        self.job = job

    def choose(self) -> tuple[str, list[str]]:
        opts = self.job.opts
        if opts.model != "auto":
            return opts.model, []
        try:
            self.job.load(DEFAULT_RAW_MODEL)
            return DEFAULT_RAW_MODEL, []
        except ModelNotFoundError:
            return FALLBACK_RAW_MODEL, [f"{DEFAULT_RAW_MODEL} is not installed: {FALLBACK_RAW_MODEL} "
                                        "with a per-pixel sigma map from the raw noise model"]

    def process(self, item):
        from n3cli.app.batch import ItemResult
        from n3cli.engine.runner import pg_conditions
        from n3cli.io.image import Image, check_size
        from n3cli.io.dng import write_dng
        from n3cli.io.batch import render_path, rendering_format
        from n3cli.io.raw import mosaic_from_planes, read_raw

        opts = self.job.opts
        t0 = time.perf_counter()
        raw = read_raw(item.src)
        check_size(raw.width, raw.height, str(item.src), opts.max_pixels)  # the DNG has the raw's size
        # (the plan, n3cli.io.batch, already sent this raw to a .dng: refused there otherwise)
        name, notes = self.choose()
        model, spec = self.job.load(name)
        desc = spec.descriptor
        if desc.task not in ("raw-denoise", "denoise") or desc.image_channels != 1 or not desc.conditioning:
            # One plane at a time, told each plane's noise: a fixed-sigma model cannot be.
            why = "takes no noise map" if desc.image_channels == 1 and desc.task == "denoise" else \
                f"is a {desc.task} model with {desc.image_channels} image channels"
            raise UsageError(f"'{name}' cannot denoise a Bayer mosaic: it {why}",
                             f"use {DEFAULT_RAW_MODEL} or {FALLBACK_RAW_MODEL}")
        noise = noise_model(raw, opts.noise)
        planes = np.ascontiguousarray(np.clip(raw.planes, 0.0, 1.0).transpose(1, 2, 0))
        try:
            cond = pg_conditions(desc.conditioning, planes, noise.planes)
        except ValueError as err:
            raise UsageError(str(err), "choose a raw or blind denoiser with --model") from None
        img = Image(pixels=planes, bit_depth=16, format="raw")  # what the time estimate reads
        out, took, estimate = self.job.run_engine(model, desc, img, cond, name)
        mosaic = mosaic_from_planes(np.clip(out, 0.0, 1.0).transpose(2, 0, 1), raw)
        only = rendering_format(item.dst)  # -o IMG.tif|png: the rendering instead of the DNG
        if only:
            # Developed from the very DNG the default would write, so both ways give one picture.
            with tempfile.TemporaryDirectory(prefix="n3-raw-") as tmp:
                dng = write_dng(Path(tmp) / "denoised.dng", mosaic, raw, noise_reduction_applied=1)
                self._write_rendering(dng, item.dst, only)
            notes.append("the sRGB rendering only (-o name.dng keeps the denoised mosaic)")
        else:
            write_dng(item.dst, mosaic, raw, noise_reduction_applied=1, exif=not opts.strip_metadata)
        notes.append(f"noise {noise.describe()}")
        if opts.strip_metadata and not only:
            notes.append("--strip-metadata: the DNG keeps the camera make and model (raw developers "
                         "need them), not the date, exposure or lens")
        if opts.fmt is not None:
            notes.append(f"--format {opts.fmt} is for images: a raw's output is a DNG "
                         "(--render tiff|png adds an sRGB rendering)")
        if opts.preview:
            notes.append("--preview makes sheets of images only: --render tiff|png shows a raw's result")
        if opts.sigma is not None:  # in a mixed batch it is for the images; say so here
            notes.append("--sigma is for images: a raw file's noise is a*x + b (set it with --noise a,b)")
        if opts.render and not only:
            dst = render_path(item.dst, opts.render)
            self._write_rendering(item.dst, dst, opts.render)
            notes.append(f"rendering {dst}")
        return ItemResult(input=str(item.src), output=str(item.dst), status="ok", model=name,
                          image=f"{raw.width}x{raw.height} {raw.cfa} raw ({raw.metadata.make} "
                                f"{raw.metadata.model})".replace(" ()", ""),
                          noise=noise.to_list(), noise_source=noise.source,
                          seconds=time.perf_counter() - t0, engine_seconds=took, estimated_seconds=estimate,
                          notes=notes)

    @staticmethod
    def _write_rendering(dng: Path, dst: Path, fmt: str) -> None:
        """Develop ``dng`` with LibRaw into a 16-bit sRGB ``fmt`` image at ``dst`` (atomically)."""
        from n3cli.io.dng import render_srgb16
        from n3cli.io.image import Image
        from n3cli.io.writer import write_image

        rgb = render_srgb16(dng).astype(np.float32) / 65535.0
        write_image(dst, Image(pixels=rgb, bit_depth=16, format=fmt), fmt)
