"""Planning a batch: which files to read and where each output goes.

Pure path logic, no pixels: the plan can be printed (``--dry-run``), checked and then
executed by :mod:`n3cli.app.batch`. Rules:

- explicit files are always inputs (a missing one is a usage error); folders contribute
  their image files (sub-folders with ``recursive``), skipping hidden/system files,
  non-images, camera raws (unless ``raw``: then they are inputs written as DNG), our temp files, earlier outputs (stem ends with the suffix)
  and the output folder itself;
- an output goes next to its input as ``<stem><suffix><ext>``, or under ``output_dir``
  mirroring the walked tree; ``output_file`` names the single output of a single input;
- an existing output is skipped unless ``overwrite`` (so a rerun resumes); an output
  that equals an input is refused unless ``in_place``; two inputs never share an output.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from n3cli.errors import UsageError
from n3cli.io.formats import (IMAGE_EXTENSIONS, RAW_EXTENSIONS, format_for_extension,
                              is_hidden_or_system, output_extension)
from n3cli.io.image import RAW_MESSAGE

DEFAULT_SUFFIX = "_denoised"
DNG_EXTENSION = ".dng"  # what a camera raw becomes
PREVIEW_SUFFIX = "_preview"  # before/after sheets (``--preview``) next to outputs


def preview_path(dst: Path) -> Path:
    """Where ``--preview`` puts the sheet of the output ``dst``."""
    return dst.with_name(f"{dst.stem}{PREVIEW_SUFFIX}.png")


@dataclass
class PlanItem:
    """One input and its output. ``action``: "run", "skip" or "fail" (decided at plan time)."""

    src: Path
    dst: Path
    action: str = "run"
    reason: str = ""


@dataclass
class Plan:
    items: list[PlanItem] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # files a walk left out, why

    def to_run(self) -> list[PlanItem]:
        return [i for i in self.items if i.action == "run"]


@dataclass
class PlanOptions:
    output: Path | None = None  # a file (single input) or a directory
    suffix: str = DEFAULT_SUFFIX
    fmt: str | None = None  # output format; None: same as input (PNG for others)
    recursive: bool = False
    overwrite: bool = False
    in_place: bool = False
    raw: bool = False  # camera raws are inputs too (n3 denoise), written as DNG


def plan_batch(inputs: list[Path | str], opts: PlanOptions) -> Plan:
    """Build the plan; raises :class:`UsageError` for impossible requests."""
    if not inputs:
        raise UsageError("no input given", "name image files or folders, e.g. n3 denoise photo.png")
    if opts.in_place and (opts.output is not None or opts.fmt is not None):
        raise UsageError("--in-place rewrites each input in its own format; it takes no -o or --format")
    if opts.in_place and opts.suffix:
        opts = PlanOptions(**{**opts.__dict__, "suffix": ""})
    paths = [Path(p) for p in inputs]
    out = Path(opts.output) if opts.output is not None else None
    out_is_dir = _output_is_dir(out)
    plan = Plan()
    sources: list[tuple[Path, Path | None]] = []  # (file, folder it was found under)
    for p in paths:
        if p.is_dir():
            sources += [(f, p) for f in _walk(p, opts, out if out_is_dir else None, plan)]
        elif p.exists():
            if p.suffix.lower() in RAW_EXTENSIONS and not opts.raw:
                raise UsageError(f"{p}: {RAW_MESSAGE}")
            sources.append((p, None))
        else:
            raise UsageError(f"{p}: no such file or directory")
    if not sources:
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
        plan.items.append(PlanItem(src, _destination(src, root, out, out_is_dir, opts)))
    _check_items(plan, opts)
    return plan


def _output_is_dir(out: Path | None) -> bool:
    if out is None:
        return False
    if out.is_dir() or str(out).endswith(("/", os.sep)):
        return True
    if out.exists():
        return False
    # "-o x.png" names a file (an error for several inputs), "-o results" a folder.
    return (format_for_extension(out) is None and out.suffix.lower() not in IMAGE_EXTENSIONS
            and out.suffix.lower() not in RAW_EXTENSIONS)


def _walk(folder: Path, opts: PlanOptions, out_dir: Path | None, plan: Plan) -> list[Path]:
    """Image files under ``folder`` in a stable (sorted) order."""
    found: list[Path] = []
    skip_dir = _key(out_dir) if out_dir is not None else None
    for dirpath, dirnames, filenames in os.walk(folder):
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
    if ext in RAW_EXTENSIONS:
        return "" if opts.raw else RAW_MESSAGE
    if ext not in IMAGE_EXTENSIONS:
        return "not an image"
    if opts.suffix and f.stem.endswith(opts.suffix):
        return f"output of an earlier run (ends in {opts.suffix})"
    if f.stem.endswith(PREVIEW_SUFFIX):
        return f"preview sheet of an earlier run (ends in {PREVIEW_SUFFIX})"
    return ""


def _destination(src: Path, root: Path | None, out: Path | None, out_is_dir: bool,
                 opts: PlanOptions) -> Path:
    if opts.in_place:
        return src
    if out is not None and not out_is_dir:
        return out
    raw = opts.raw and src.suffix.lower() in RAW_EXTENSIONS
    name = f"{src.stem}{opts.suffix}{DNG_EXTENSION if raw else output_extension(src, opts.fmt)}"
    if out is None:
        return src.with_name(name)
    rel = src.parent.relative_to(root) if root is not None else Path()
    return out / rel / name


def _key(p: Path) -> Path:
    """Identity of a path on disk (resolves ./, .., symlinks)."""
    return Path(os.path.realpath(p))


def _check_items(plan: Plan, opts: PlanOptions) -> None:
    inputs = {_key(i.src) for i in plan.items}
    claimed: dict[Path, Path] = {}
    for item in plan.items:
        dkey = _key(item.dst)
        if dkey in claimed:
            item.action, item.reason = "fail", f"same output as {claimed[dkey]} ({item.dst})"
            continue
        claimed[dkey] = item.src
        if opts.in_place:
            continue
        if dkey in inputs:
            item.action = "fail"
            item.reason = f"output {item.dst} would overwrite an input (use --suffix, -o or --in-place)"
        elif item.dst.is_dir():
            item.action, item.reason = "fail", f"output {item.dst} is a directory"
        elif item.dst.exists() and not opts.overwrite:
            item.action, item.reason = "skip", f"{item.dst} exists (use --overwrite)"
