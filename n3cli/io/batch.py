"""Planning a batch: which files to read and where each output goes.

Pure path logic, no pixels: the plan can be printed (``--dry-run``), checked and then
executed by :mod:`n3cli.app.batch`. Rules:

- explicit files are always inputs (a missing one is a usage error); folders contribute
  their image files (sub-folders with ``recursive``), skipping hidden/system files,
  non-images, camera raws (unless ``raw``: then they are inputs written as DNG), our temp files, earlier outputs (stem ends with the suffix)
  and the output folder itself;
- an output goes next to its input as ``<stem><suffix><ext>``, or under ``output_dir``
  mirroring the walked tree; ``output_file`` names the single output of a single input;
- a camera raw's output is a DNG (or, named ``-o IMG.tif|png``, its sRGB rendering alone),
  and only a raw's output is a DNG (both checked here, so that ``--dry-run`` shows the refusal);
- side outputs (``--preview`` sheets, ``--render`` renderings of raws) obey the same rules
  as outputs: never an input, never shared, never an existing file unless ``overwrite``;
- an existing output is skipped unless ``overwrite`` (so a rerun resumes); an output
  that equals an input is refused unless ``in_place``; two inputs never share an output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from n3cli.errors import UsageError
from n3cli.io.atomic import NAME_MAX, describe_os_error
from n3cli.io.formats import (FOREIGN_IMAGE_EXTENSIONS, IMAGE_EXTENSIONS, RAW_EXTENSIONS,
                              format_for_extension, is_hidden_or_system, output_extension)
from n3cli.io.image import RAW_MESSAGE

DEFAULT_SUFFIX = "_denoised"
DNG_EXTENSION = ".dng"  # what a camera raw becomes
PREVIEW_SUFFIX = "_preview"  # before/after sheets (``--preview``) next to outputs


def preview_path(dst: Path) -> Path:
    """Where ``--preview`` puts the sheet of the output ``dst``."""
    return dst.with_name(f"{dst.stem}{PREVIEW_SUFFIX}.png")


#: The formats of a raw's rendering: a raw's output named as one (``-o IMG.tif``) is that
#: rendering alone, instead of a DNG (the rendering ``--render`` puts beside one).
RENDER_FORMATS = ("tiff", "png")


def render_path(dst: Path, fmt: str) -> Path:
    """Where ``--render FMT`` puts the sRGB rendering of the DNG ``dst``."""
    return dst.with_suffix(".tif" if fmt == "tiff" else ".png")


def rendering_format(dst: Path) -> str | None:
    """The format of a raw's output ``dst`` when it is a rendering instead of a DNG, else None."""
    fmt = format_for_extension(dst)
    return fmt if fmt in RENDER_FORMATS else None


@dataclass
class PlanItem:
    """One input and its output. ``action``: "run", "skip" or "fail" (decided at plan time);
    ``extras``: the side outputs the run writes too (preview sheet, rendering); ``raw``:
    the input is a camera raw (its noise is a, b; its output a DNG or a rendering)."""

    src: Path
    dst: Path
    action: str = "run"
    reason: str = ""
    extras: list[Path] = field(default_factory=list)
    raw: bool = False


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # files a walk left out, why

    def to_run(self) -> list[PlanItem]:
        return [i for i in self.items if i.action == "run"]


@dataclass
class PlanOptions:
    output: Path | str | None = None  # a file (single input) or a directory (a str keeps a trailing "/")
    suffix: str = DEFAULT_SUFFIX
    fmt: str | None = None  # output format; None: same as input (PNG for others)
    recursive: bool = False
    overwrite: bool = False
    in_place: bool = False
    raw: bool = False  # camera raws are inputs too (n3 denoise), written as DNG
    raw_only: bool = False  # --raw: every input must be a camera raw (others fail)
    earlier_suffixes: tuple[str, ...] = ()  # also outputs of earlier runs (n3 upscale: _x2, _x3, _x4)
    preview: bool = False  # each image's output gets a before/after sheet (preview_path)
    render: str | None = None  # each raw's DNG gets an sRGB rendering (render_path): tiff | png


def plan_batch(inputs: list[Path | str], opts: PlanOptions) -> Plan:
    """Build the plan; raises :class:`UsageError` for impossible requests."""
    if not inputs:
        raise UsageError("no input given", "name image files or folders, e.g. n3 denoise photo.png")
    if opts.in_place and (opts.output is not None or opts.fmt is not None):
        raise UsageError("--in-place rewrites each input in its own format; it takes no -o or --format")
    if opts.in_place and opts.suffix:
        opts = PlanOptions(**{**opts.__dict__, "suffix": ""})
    if any(str(p) == "-" for p in inputs):
        raise UsageError("-: n3 does not read images from standard input", "name an image file or folder")
    if opts.output is not None and str(opts.output) == "-":
        raise UsageError("-o -: n3 does not write images to standard output", "name a file or folder")
    paths = [Path(p) for p in inputs]
    out = Path(opts.output) if opts.output is not None else None
    # Path() drops a trailing separator, which is how "-o name.png/" asks for a folder.
    try:
        out_is_dir = _output_is_dir(out, str(opts.output).endswith(("/", os.sep)))
        if out_is_dir and out is not None and out.exists() and not out.is_dir():
            raise UsageError(f"-o {opts.output}: {out} is a file, not a folder", "name a folder, or drop the trailing /")
    except OSError as err:  # e.g. a name longer than the file system allows
        raise UsageError(f"-o {opts.output}: {describe_os_error(err)}") from None
    plan = Plan()
    sources: list[tuple[Path, Path | None]] = []  # (file, folder it was found under)
    for p in paths:
        try:
            is_dir, exists = p.is_dir(), p.exists()
        except OSError as err:
            raise UsageError(f"{p}: {describe_os_error(err)}") from None
        if is_dir:
            sources += [(f, p) for f in _walk(p, opts, out if out_is_dir else None, plan)]
        elif exists:
            if p.suffix.lower() in RAW_EXTENSIONS and not opts.raw:
                raise UsageError(f"{p}: {RAW_MESSAGE}")
            sources.append((p, None))
        else:
            raise UsageError(f"{p}: no such file or directory")
    if not sources and not plan.items:
        if plan.ignored:
            raise UsageError(f"no images to denoise in {', '.join(map(str, paths))} "
                             f"({len(plan.ignored)} other files skipped)")
        raise UsageError(f"no images found in {', '.join(map(str, paths))}")
    if out is not None and not out_is_dir:
        if len(sources) > 1:
            raise UsageError(f"-o {out} names one file but there are {len(sources)} inputs",
                             "give a directory")
        if format_for_extension(out) is None and not (opts.raw and out.suffix.lower() == DNG_EXTENSION):
            raise UsageError(f"-o {out}: n3 cannot write {out.suffix or 'files without an extension'}",
                             "use .png, .tif, .jpg, .bmp or .webp")
        if opts.fmt and format_for_extension(out) != opts.fmt:
            raise UsageError(f"-o {out} and --format {opts.fmt} disagree", "drop one of them")
    seen_src: set[Path] = set()
    for src, root in sources:
        key = _key(src)
        if key in seen_src:
            continue  # named twice (or a file and its folder): process once
        seen_src.add(key)
        is_raw = opts.raw and _looks_like_raw(src)
        dst = _destination(src, root, out, out_is_dir, opts, is_raw)
        plan.items.append(PlanItem(src, dst, extras=_side_outputs(dst, is_raw, opts), raw=is_raw))
        _check_kind(plan.items[-1], is_raw, opts.raw_only, opts.render)
    overwrites = _check_items(plan, opts)
    if len(plan.items) > 1 and overwrites == len(plan.items):  # the request itself is the mistake
        raise UsageError(f"every output would overwrite its input ({plan.items[0].dst} and "
                         f"{len(plan.items) - 1} more)", "use --suffix, -o another folder, or --in-place")
    return plan


def vet_plan_sizes(plan: Plan, fmt: str | None, max_pixels: int | None, scale: int = 1) -> bool:
    """Mark the planned image items whose header shows the real run would refuse them
    (the pixel limit, the output format's largest side) as failed, with the real run's
    reason; True if any was. Reads headers, no pixels (``--dry-run``)."""
    from n3cli.io.reader import vet_sizes

    found = False
    for item in plan.items:
        if item.action != "run" or item.raw:
            continue
        why = vet_sizes(item.src, item.dst, fmt, max_pixels, scale)
        if why:
            item.action, item.reason, found = "fail", why.removeprefix(f"{item.src}: "), True
    return found


def _output_is_dir(out: Path | None, trailing_sep: bool = False) -> bool:
    if out is None:
        return False
    if out.is_dir() or trailing_sep:
        return True
    if out.exists():
        return False
    # "-o x.png" names a file (an error for several inputs), "-o results" a folder.
    ext = out.suffix.lower()
    return (format_for_extension(out) is None and ext not in IMAGE_EXTENSIONS
            and ext not in RAW_EXTENSIONS and ext not in FOREIGN_IMAGE_EXTENSIONS)


def _walk(folder: Path, opts: PlanOptions, out_dir: Path | None, plan: Plan) -> list[Path]:
    """Image files under ``folder`` in a stable (sorted) order."""
    found: list[Path] = []
    skip_dir = _key(out_dir) if out_dir is not None else None

    def unreadable(err: OSError) -> None:  # a folder the walk cannot list fails, visibly
        where = Path(err.filename) if err.filename else folder
        plan.items.append(PlanItem(where, where, action="fail",
                                   reason=f"cannot read this folder ({describe_os_error(err)})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        here = Path(dirpath)
        # Never descend into hidden folders, __MACOSX, or our own output folder.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX"
                             and _key(here / d) != skip_dir)
        if not opts.recursive:
            dirnames[:] = []
        for name in sorted(filenames):
            f = here / name
            why = _ignore_reason(f, opts) or ("" if f.is_file() else "not a regular file")
            if why:
                plan.ignored.append((f, why))
            else:
                found.append(f)
    return found


def _ignore_reason(f: Path, opts: PlanOptions) -> str:
    ext = f.suffix.lower()
    if is_hidden_or_system(f):
        return "hidden or system file"
    if ext not in RAW_EXTENSIONS and ext not in IMAGE_EXTENSIONS:
        return "not an image"
    # Before the raw test: a raw batch's own DNGs (<stem>_denoised.dng) are outputs too.
    for suffix in (opts.suffix, *opts.earlier_suffixes):
        if suffix and f.stem.endswith(suffix):
            return f"output of an earlier run (ends in {suffix})"
    if f.stem.endswith(PREVIEW_SUFFIX):
        return f"preview sheet of an earlier run (ends in {PREVIEW_SUFFIX})"
    if ext in RAW_EXTENSIONS:
        return "" if opts.raw else RAW_MESSAGE
    return ""


def _looks_like_raw(src: Path) -> bool:
    from n3cli.io.raw import looks_like_raw  # rawpy only for files of unknown type

    return looks_like_raw(src)


def _destination(src: Path, root: Path | None, out: Path | None, out_is_dir: bool,
                 opts: PlanOptions, raw: bool) -> Path:
    if opts.in_place:
        return src
    if out is not None and not out_is_dir:
        return out
    name = f"{src.stem}{opts.suffix}{DNG_EXTENSION if raw else output_extension(src, opts.fmt)}"
    if out is None:
        return src.with_name(name)
    rel = src.parent.relative_to(root) if root is not None else Path()
    return out / rel / name


def _side_outputs(dst: Path, raw: bool, opts: PlanOptions) -> list[Path]:
    if raw:
        return [render_path(dst, opts.render)] if opts.render and rendering_format(dst) is None else []
    return [preview_path(dst)] if opts.preview else []


def _check_kind(item: PlanItem, raw: bool, raw_only: bool, render: str | None) -> None:
    """A raw goes to a DNG, or to its sRGB rendering alone (``-o IMG.tif|png``), and only a raw
    goes to a DNG (a DNG name on PNG bytes misleads every reader)."""
    is_dng = item.dst.suffix.lower() == DNG_EXTENSION
    if raw and item.dst == item.src:  # --in-place: a DNG under the raw's own name would replace it
        item.action, item.reason = "fail", (
            f"{item.src} is a camera raw: n3 never replaces a raw file, --in-place does not apply "
            "(drop it: the output is <name>_denoised.dng)")
    elif raw_only and not raw:
        item.action, item.reason = "fail", f"{item.src}: not a camera raw file (--raw): drop --raw to denoise images"
    elif raw and not is_dng and rendering_format(item.dst) is None:
        item.action, item.reason = "fail", (
            f"{item.src} is a camera raw: its output is a DNG, not {item.dst.suffix or 'a file without extension'} "
            "(use -o name.dng or a folder; -o name.tif|png for an sRGB rendering instead)")
    elif raw and not is_dng and render:
        item.action, item.reason = "fail", (
            f"-o {item.dst} writes {item.src}'s rendering instead of a DNG, and --render adds one beside "
            "a DNG: drop one of them")
    elif is_dng and not raw:
        item.action, item.reason = "fail", (
            f"{item.src} is not a camera raw: n3 writes DNG only for raw files (use .png, .tif, .jpg, .bmp or .webp)")


def _key(p: Path) -> Path:
    """Identity of a path on disk (resolves ./, .., symlinks)."""
    return Path(os.path.realpath(p))


def _check_items(plan: Plan, opts: PlanOptions) -> int:
    """Refuse or skip items by their outputs; returns how many would overwrite an input."""
    inputs = {_key(i.src) for i in plan.items}
    claimed: dict[Path, Path] = {}
    overwrites = 0
    for item in plan.items:
        if item.action == "fail":
            continue
        long_name = next((p for p in [item.dst, *item.extras] if len(os.fsencode(p.name)) > NAME_MAX), None)
        if long_name is not None:
            item.action, item.reason = "fail", (
                f"output name {long_name.name[:40]}... is {len(os.fsencode(long_name.name))} bytes, more than a "
                f"file name holds ({NAME_MAX}): rename the input, or use a shorter --suffix")
            continue
        try:
            overwrites += _check_outputs(item, opts, inputs, claimed)
        except OSError as err:  # the file system refuses to even look (permissions, odd names)
            item.action, item.reason = "fail", f"{item.dst}: {describe_os_error(err)}"
    return overwrites


def _check_outputs(item: PlanItem, opts: PlanOptions, inputs: set[Path], claimed: dict[Path, Path]) -> int:
    """One item's outputs against inputs, other items' outputs and files already there;
    returns 1 if its output would overwrite an input."""
    outputs = [item.dst, *item.extras]
    shared = next((p for p in outputs if _key(p) in claimed), None)
    if shared is not None:
        item.action, item.reason = "fail", f"same output as {claimed[_key(shared)]} ({shared})"
        return 0
    claimed.update((_key(p), item.src) for p in outputs)
    if opts.in_place:
        outputs = item.extras  # the input itself is the output, by request
    hit = next((p for p in outputs if _key(p) in inputs), None)
    if hit is not None:
        item.action = "fail"
        fixes = "--suffix or -o" if hit.suffix.lower() == DNG_EXTENSION else "--suffix, -o or --in-place"
        item.reason = f"output {hit} would overwrite an input (use {fixes})"
        return 1
    if any(p.is_dir() for p in outputs):
        item.action, item.reason = "fail", f"output {next(p for p in outputs if p.is_dir())} is a directory"
    elif opts.overwrite:
        pass
    elif item.dst.exists() and not opts.in_place:
        missing = [str(p) for p in item.extras if not p.exists()]
        item.action, item.reason = "skip", f"{item.dst} exists (use --overwrite" + (
            f"; {', '.join(missing)} is not written either)" if missing else ")")
    elif any(p.exists() for p in item.extras):
        item.action = "fail"
        item.reason = f"{next(p for p in item.extras if p.exists())} exists (use --overwrite to replace it)"
    return 0
