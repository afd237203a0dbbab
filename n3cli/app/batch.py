"""Running a batch plan: one file at a time, every failure captured per item.

An :class:`ImageJob` turns one :class:`~n3cli.io.batch.PlanItem` into an output file
(read, choose and load the model, run the engine, write atomically): :class:`Denoiser`
here, :class:`n3cli.app.upscale.Upscaler` for super-resolution. :func:`run_plan` walks a
plan, so a broken file never stops the others, and returns a :class:`BatchReport` (also
the ``--json`` document). The CLI only formats it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from n3cli.data.estimate import TooSmallError, estimate_sigma
from n3cli.errors import ModelNotFoundError, N3Error, UsageError
from n3cli.io.batch import Plan, PlanItem, preview_path
from n3cli.io.image import DEFAULT_MAX_PIXELS, Image
from n3cli.io.reader import read_image
from n3cli.io.writer import JPEG_QUALITY, check_output_size, write_image
from n3cli.engine.runner import (DEFAULT_GRAY_ON_COLOR, estimate_seconds, plane_passes, restore_image,
                                sigma_conditions)

GRAY_ON_COLOR_HINT = "a colour model gives better results on colour photos"


@dataclass
class JobOptions:
    """What every image job (denoise, upscale) decides per run, not per file."""

    model: str = "auto"
    device: str = "auto"
    fmt: str | None = None  # None: from the output's extension
    quality: int = JPEG_QUALITY
    strip_metadata: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS  # judged on the output (upscale: scale^2 more)
    # Tiling / precision, passed to the engine (restore_image).
    tile: str | int = "auto"
    tile_overlap: int | None = None
    tile_mode: str = "exact"
    precision: str = "fp32"
    threads: int | None = None
    max_memory: int | None = None  # bytes
    ensemble: int = 1  # geometric self-ensemble size (1, 2, 4 or 8)
    preview: bool = False  # also write a before/after sheet next to each output
    gray_on_color: str = DEFAULT_GRAY_ON_COLOR  # how a gray-packed model runs on colour


@dataclass
class DenoiseOptions(JobOptions):
    """``n3 denoise``'s options: the shared ones and the noise level."""

    sigma: float | None = None  # None: estimate per image (--sigma auto)
    # Camera raw files (recognised by content; see n3cli.app.raw):
    noise: tuple[tuple[float, float], ...] | None = None  # (a, b) per CFA plane; None: from the file
    render: str | None = None  # also write an sRGB rendering: "tiff" or "png"


@dataclass
class ItemResult:
    """Outcome of one input: status "ok", "skipped" or "failed"."""

    input: str
    output: str
    status: str
    reason: str = ""
    exit_code: int = 0
    sigma: float | None = None
    sigma_source: str = ""  # "given" or "estimated"
    sigma_used: float | None = None  # what the model was fed: an estimate outside its range is clamped
    noise: list[list[float]] | None = None  # raw: (a, b) per CFA plane
    noise_source: str = ""  # raw: "given", "dng-noise-profile" or "estimated"
    model: str | None = None
    image: str = ""  # e.g. "640x480 16-bit RGB PNG"
    seconds: float = 0.0
    engine_seconds: float = 0.0  # of ``seconds``, the time in the network (no I/O)
    estimated_seconds: float | None = None  # what was estimated for engine_seconds beforehand
    notes: list[str] = field(default_factory=list)
    rank: int | None = None  # the torchrun rank that processed it (None: one process)
    error: BaseException | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "error" and not (k == "rank" and v is None)
             and not (k in ("noise", "noise_source") and not v)}
        for key in ("sigma", "sigma_used"):
            if d[key] is not None:
                d[key] = round(float(d[key]), 3)
        d["seconds"] = round(d["seconds"], 3)
        d["engine_seconds"] = round(d["engine_seconds"], 3)
        if d["estimated_seconds"] is not None:
            d["estimated_seconds"] = round(d["estimated_seconds"], 3)
        return d


@dataclass
class BatchReport:
    items: list[ItemResult] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed; 1 otherwise (a batch's failures are item failures)."""
        return 1 if self.count("failed") else 0

    def to_dict(self) -> dict[str, Any]:
        return {"summary": {"succeeded": self.count("ok"), "skipped": self.count("skipped"),
                            "failed": self.count("failed"), "ignored": len(self.ignored),
                            "interrupted": self.interrupted},
                "items": [i.to_dict() for i in self.items],
                "ignored": [{"path": p, "reason": r} for p, r in self.ignored]}


class Reporter:
    """Progress hooks; the CLI subclasses this with rich. Default: silent."""

    def item_started(self, item: PlanItem, index: int, total: int) -> None: ...

    def item_finished(self, result: ItemResult) -> None: ...

    def tiles(self, done: int, total: int) -> None: ...

    def note(self, message: str) -> None: ...


class ImageJob:
    """One file in, one file out, through a model: what denoising and upscaling share.

    Subclasses decide the model and its conditioning per image (:meth:`process`); this
    base loads models once per name, announces long jobs with a calibrated estimate, runs
    the engine, and writes the output (and its preview) atomically.
    """

    def __init__(self, opts: JobOptions, reporter: Reporter | None = None):
        from n3cli.engine.device import resolve_device

        self.opts = opts
        self.reporter = reporter or Reporter()
        self.device = resolve_device(opts.device)
        self._models: dict[tuple[str, int | None], tuple[Any, Any]] = {}
        self._rates: dict[tuple[str, int], float] = {}  # (model, channels) -> s per processed MP
        self._tile_noted = False
        from n3cli.engine.precision import precision_advice

        advice = precision_advice(opts.precision, self.device)
        if advice:
            self.reporter.note(advice)

    def load(self, name: str, scale: int | None = None):
        """(model, spec) for ``name`` (at ``scale`` for a multi-scale model), cached."""
        key = (name, scale)
        if key not in self._models:
            from n3cli import weights

            self._models[key] = weights.load_model(name, self.device, scale=scale)
        return self._models[key]

    def read(self, item: PlanItem, scale: int = 1) -> Image:
        """The input image; the pixel limit, and the output format's largest side, apply to
        what will be written (refused here, before any work)."""
        img = read_image(item.src, self.opts.max_pixels, scale)
        check_output_size(item.dst, self.opts.fmt, img.width * scale, img.height * scale)
        return img

    def write(self, item: PlanItem, before: Image, after: Image) -> list[str]:
        """Write ``after`` (and its preview sheet) atomically; notes on what the format lost."""
        notes = write_image(item.dst, after, self.opts.fmt, self.opts.quality, self.opts.strip_metadata)
        if self.opts.preview:
            notes.append(f"preview sheet {write_preview(before, after, item)}")
        return notes

    def run_engine(self, model, desc, img: Image, conditions: dict, name: str
                   ) -> tuple[np.ndarray, float, float | None]:
        """Announce a long job in one line, then run the tiled engine on one image.

        Returns the output, the seconds it took and the estimate made beforehand (None
        when none could be made): see :meth:`estimate_engine_seconds`.
        """
        o = self.opts
        try:
            secs = self.estimate_engine_seconds(model, desc, img, conditions, name)
            waste = self._tiling_overhead(desc, img)
        except Exception:  # an estimate is a courtesy, never a failure
            secs, waste = None, 1.0
        if secs is not None and secs > 10:
            self.reporter.note(f"{img.width}x{img.height} on {self.device.type}: about {secs:.0f} s")
        if waste >= 3 and not self._tile_noted:
            self._tile_noted = True  # once per job, not once per file
            self.reporter.note(f"--tile {o.tile} does {waste:.0f}x the work of one pass on this image (every "
                               f"tile re-reads the model's context): a larger --tile or --tile auto is faster")
        t0 = time.perf_counter()
        out = restore_image(model, desc, img.pixels, conditions, self.device,
                            gray_on_color=o.gray_on_color, tile=o.tile,
                            tile_overlap=o.tile_overlap, mode=o.tile_mode,
                            precision=o.precision, max_memory=o.max_memory,
                            threads=o.threads, progress=self.reporter.tiles,
                            ensemble=o.ensemble)
        took = time.perf_counter() - t0
        area = self._work_mpixels(desc, img)
        if area > 0.25:  # small images are all overhead: they would mislead the next estimate
            self._rates[(name, img.channels)] = took / area
        return out, took, secs

    def _work_mpixels(self, desc, img: Image, seconds_per_mpixel: float | None = 1.0) -> float:
        """Input megapixels the engine processes: tiles with their context, every pass
        (or, with ``seconds_per_mpixel`` None, the prior's seconds for them)."""
        o = self.opts
        tile = o.tile if isinstance(o.tile, int) else 0
        return self.opts.ensemble * estimate_seconds(img.height, img.width, desc, self.device, tile=tile,
                                                     mode=o.tile_mode, tile_overlap=o.tile_overlap,
                                                     seconds_per_mpixel=seconds_per_mpixel)

    def _tiling_overhead(self, desc, img: Image) -> float:
        """How many times one whole-image pass a ``--tile N`` plan costs (1 untiled)."""
        if not isinstance(self.opts.tile, int) or self.opts.tile <= 0:
            return 1.0
        whole = self.opts.ensemble * max(img.height, desc.min_size) * max(img.width, desc.min_size) / 1e6
        return self._work_mpixels(desc, img) / whole

    def estimate_engine_seconds(self, model, desc, img: Image, conditions: dict, name: str) -> float:
        """Seconds the engine will take on ``img``, calibrated on this machine.

        The rate (seconds per processed megapixel) is per model and image channel count
        (a gray model on colour runs three planes): the last large file's measured rate,
        else a probe, timed once per run, of the model on a 256x256 image with this
        image's channels, when the multiply-add prior says the job is not tiny.
        """
        key = (name, img.channels)
        area = self._work_mpixels(desc, img)
        if key not in self._rates:
            planes = plane_passes(desc, img.channels)
            prior = planes * self._work_mpixels(desc, img, seconds_per_mpixel=None)
            if prior < 2.5:
                return prior
            self._rates[key] = self._probe(model, desc, img.channels, conditions)
        return self._rates[key] * area

    def _probe(self, model, desc, channels: int, conditions: dict) -> float:
        o, size = self.opts, 256
        probe = np.random.default_rng(0).random((size, size, channels), dtype=np.float32)
        scalar = {k: v for k, v in conditions.items() if np.isscalar(v)}  # per-pixel maps: their mean
        scalar.update({k: float(np.mean(v)) for k, v in conditions.items() if not np.isscalar(v)})

        def once() -> float:
            t0 = time.perf_counter()
            restore_image(model, desc, probe, scalar, self.device, gray_on_color=o.gray_on_color, tile=0,
                          precision=o.precision, threads=o.threads)
            return time.perf_counter() - t0

        once()  # warm-up: first-call allocations, kernel selection
        return once() / (size * size / 1e6)


class Denoiser(ImageJob):
    """Denoises single files: noise level given or estimated, model chosen by sigma and
    colour, the sigma map as the model's conditioning."""

    opts: DenoiseOptions

    # -- models -------------------------------------------------------------------------
    def choose(self, sigma: float | None, color: bool) -> tuple[str, list[str]]:
        """The model for this image: ``--model`` or the ``--model auto`` rule.

        ``choose_model`` wants the exact sigma of a fixed-sigma model; an *estimated* sigma
        never is one, so when it finds nothing we take the installed fixed-sigma model
        nearest to the estimate (within 20 %), and say so.
        """
        if self.opts.model != "auto":
            return self.opts.model, []
        from n3cli import weights

        try:
            return weights.choose_model(sigma, color), []
        except ModelNotFoundError:
            if sigma is None or self.opts.sigma is not None:
                raise
            near = _nearest_fixed_sigma(sigma)
            if near is None:
                raise
            return near[0], [f"{near[0]} is the installed model nearest to the estimated sigma {sigma:.1f}"]

    def preload(self) -> None:
        """Fail early (usage error) on an unknown or missing explicit ``--model``."""
        if self.opts.model != "auto":
            _, spec = self.load(self.opts.model)
            if spec.descriptor.task == "sr":
                raise UsageError(f"'{self.opts.model}' is an sr model, it does not denoise",
                                 "upscale with `n3 upscale`, or pick a denoise model with --model")
            if self.opts.sigma is not None:
                check_sigma(self.opts.sigma, spec.descriptor, spec.name)

    # -- one file -----------------------------------------------------------------------
    def process(self, item: PlanItem) -> ItemResult:
        from n3cli.app.raw import RawJob
        from n3cli.io.raw import looks_like_raw

        if looks_like_raw(item.src):
            return RawJob(self).process(item)
        t0 = time.perf_counter()
        img = self.read(item)
        notes = list(img.notes)
        sigma, source = self.opts.sigma, "given"
        if sigma is None:
            sigma, source = self.estimate(img, item.src), "estimated"
        name, more = self.choose(sigma, img.color)
        notes += more
        model, spec = self.load(name)
        desc = spec.descriptor
        if desc.task != "denoise":  # e.g. a raw model, which takes Bayer planes and (a, b) maps
            raise UsageError(f"{item.src}: '{name}' is a {desc.task} model, it cannot denoise an image",
                             "pick a Gaussian denoiser with --model (see `n3 weights list`)")
        sigma_used, more = self.sigma_for_model(sigma, source, desc, name)
        notes += more
        if desc.packing == "gray" and img.color:
            notes.append(f"gray model on a colour image ({self.opts.gray_on_color} channels): "
                         f"{GRAY_ON_COLOR_HINT}")
        out, took, estimate = self.run_engine(model, desc, img, sigma_conditions(sigma_used), name)
        notes += self.write(item, img, replace(img, pixels=clip_like(out, img)))
        return ItemResult(input=str(item.src), output=str(item.dst), status="ok", sigma=sigma,
                          sigma_source=source, sigma_used=sigma_used, model=name, image=img.describe(),
                          seconds=time.perf_counter() - t0, engine_seconds=took, estimated_seconds=estimate,
                          notes=notes)

    def estimate(self, img: Image, src: Path) -> float:
        try:
            return estimate_sigma(img.pixels)
        except TooSmallError:
            raise UsageError(f"{src}: {img.width}x{img.height} is too small to estimate the noise "
                             "level", "give --sigma") from None

    def sigma_for_model(self, sigma: float, source: str, desc, name: str) -> tuple[float, list[str]]:
        """Check sigma against the model; an estimate outside a blind model's range is clamped."""
        if desc.noise_map and desc.sigma_range:
            lo, hi = desc.sigma_range
            if not lo <= sigma <= hi:
                if source == "given":
                    check_sigma(sigma, desc, name)
                clamped = min(max(sigma, lo), hi)
                return clamped, [f"estimated sigma {sigma:.1f} outside {name}'s range {lo:g}..{hi:g}: "
                                 f"using {clamped:g}"]
            return sigma, []
        if desc.sigma and abs(sigma - desc.sigma) > 0.2 * desc.sigma:
            return sigma, [f"{name} was trained for sigma {desc.sigma:g}, this image's is {sigma:.1f}"]
        return sigma, []


def clip_like(out: np.ndarray, source: Image, alpha: np.ndarray | None = None) -> np.ndarray:
    """The network's output held to the range its input lived in: [0, 1] for integer and
    unit-range float images (networks and bicubic overshoot at edges), no negative light
    for a float image that had none (HDR values above 1 are kept), and premultiplied
    colours at most their ``alpha`` (the output's; the source's by default)."""
    if source.unit_range:
        out = np.clip(out, 0.0, 1.0)
    elif source.pixels.size and float(source.pixels.min()) >= 0.0:
        out = np.maximum(out, 0.0)
    alpha = source.alpha if alpha is None else alpha
    if source.premultiplied and alpha is not None:
        out = np.minimum(out, alpha[..., None])
    return out


def write_preview(before: Image, after: Image, item: PlanItem) -> Path:
    """The before/after sheet of one item, ``<output stem>_preview.png`` beside the output."""
    from n3cli.app.compare import compare_sheet, write_sheet

    sheet = compare_sheet([before, after], [item.src.name, item.dst.name])
    return write_sheet(sheet, preview_path(item.dst))


def check_sigma(sigma: float, desc, name: str) -> None:
    """A given sigma outside a blind model's training range is a usage error."""
    if desc.noise_map and desc.sigma_range:
        lo, hi = desc.sigma_range
        if not lo <= sigma <= hi:
            raise UsageError(f"--sigma {sigma:g} is outside {name}'s range {lo:g}..{hi:g}",
                             "pick a sigma in range or another --model")


def _nearest_fixed_sigma(sigma: float) -> tuple[str, float] | None:
    from n3cli import weights

    try:
        rows = [m for m in weights.available_models()
                if m.installed and m.descriptor.sigma and m.descriptor.task == "denoise"]
    except Exception:
        return None
    if not rows:
        return None
    best = min(rows, key=lambda m: abs(m.descriptor.sigma - sigma))
    near = best.descriptor.sigma
    return (best.name, near) if abs(near - sigma) <= 0.2 * near else None


def run_plan(plan: Plan, process: Callable[[PlanItem], ItemResult], reporter: Reporter | None = None,
             debug: bool = False) -> BatchReport:
    """Run every item; failures become "failed" results. Ctrl-C / SIGTERM stop the batch
    and propagate, with the partial report attached as ``err.report``."""
    reporter = reporter or Reporter()
    report = BatchReport(ignored=[(str(p), why) for p, why in plan.ignored])
    total = len(plan.items)
    for index, item in enumerate(plan.items):
        if item.action != "run":
            status = "skipped" if item.action == "skip" else "failed"
            res = ItemResult(str(item.src), str(item.dst), status, item.reason,
                             exit_code=2 if status == "failed" else 0)
            report.items.append(res)
            reporter.item_finished(res)
            continue
        reporter.item_started(item, index, total)
        t0 = time.perf_counter()
        try:
            res = process(item)
        except KeyboardInterrupt as err:
            report.interrupted = True
            err.report = report  # type: ignore[attr-defined]
            raise
        except N3Error as err:
            res = ItemResult(str(item.src), str(item.dst), "failed", _name_file(err.one_line(), item.src),
                             exit_code=err.exit_code, seconds=time.perf_counter() - t0, error=err)
        except Exception as err:  # a bug or an exotic failure: still only this item
            if debug:
                raise
            res = ItemResult(str(item.src), str(item.dst), "failed", _unexpected(err, item.src),
                             exit_code=1, seconds=time.perf_counter() - t0, error=err)
        report.items.append(res)
        reporter.item_finished(res)
    return report


def _unexpected(err: BaseException, src: Path) -> str:
    """One line for an exception that is not ours (out of memory gets advice)."""
    text = " ".join(str(err).split())[:160]
    if isinstance(err, MemoryError) or "out of memory" in text.lower():
        return f"{src}: out of memory: try a smaller --tile or --max-memory, or --device cpu"
    return f"{src}: internal error: {type(err).__name__}: {text} (rerun with --debug)"


def _name_file(message: str, src: Path) -> str:
    """Make sure a failure's one line names the file (model errors, e.g., do not)."""
    return message if str(src) in message else f"{src}: {message}"
