"""``n3 denoise``: parse options, plan, run, report. The work lives in
:mod:`n3cli.io.batch` (planning), :mod:`n3cli.app.batch` (running) and
:mod:`n3cli.app.distributed` (sharing a batch among torchrun ranks)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from n3cli.cli.options import GRAY_ON_COLOR_CHOICES
from n3cli.errors import UsageError
from n3cli.io.batch import DEFAULT_SUFFIX, PlanOptions, plan_batch
from n3cli.io.formats import normalize_format
from n3cli.io.image import DEFAULT_MAX_PIXELS

EPILOG = """\b
Examples:
  n3 denoise noisy.png --sigma 25           -> noisy_denoised.png next to the input
  n3 denoise noisy.png                      noise level estimated (--sigma auto)
  n3 denoise scan.tif -o clean.tif          16-bit stays 16-bit, ICC/DPI kept
  n3 denoise photos/ -o clean/ --recursive  mirror a folder tree; rerun to resume
  n3 denoise photos/ --dry-run              show what would be written
  n3 denoise *.jpg --json > report.json     machine-readable report on stdout
  torchrun --nproc-per-node 4 -m n3cli denoise photos/ -o clean/ -r
                                            one folder shared by 4 GPUs (or CPU processes)

\b
Output: same format, bit depth and channels as the input (PNG, TIFF, JPEG at
quality 95 with 4:4:4 chroma, BMP, WebP; other formats become PNG); alpha passes
through untouched; EXIF (orientation reset: pixels are written upright), ICC profile
and DPI are carried over unless --strip-metadata. Float TIFFs stay float.

\b
Safety: outputs are written to a temp file and renamed (Ctrl-C leaves no partial
files); inputs are never overwritten unless --in-place; existing outputs are skipped
unless --overwrite; hidden files, non-images and earlier outputs (*_denoised.*) in
folders are skipped. A failed file never stops a batch: a summary follows and the
exit code is 1. Usage errors exit with 2.

\b
Sigma is in 8-bit units (0-255) whatever the bit depth.
"""


def parse_sigma(value: str | None) -> float | None:
    """``auto``/None -> None; otherwise a number in (0, 255]."""
    if value is None or str(value).strip().lower() == "auto":
        return None
    try:
        sigma = float(value)
    except ValueError:
        raise UsageError(f"--sigma '{value}' is not a number",
                         "give the noise std in 8-bit units (e.g. 25) or auto") from None
    if not 0 < sigma <= 255 or sigma != sigma:
        raise UsageError(f"--sigma {value} is out of range", "it is a std in 8-bit units: 0 < sigma <= 255")
    return sigma


def parse_count(value: str | None, option: str) -> int | None:
    """``100M``, ``2.5e8``, ``50000`` -> int (K/M/G suffixes are powers of 1000)."""
    if value is None:
        return None
    text = str(value).strip().upper()
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(text[-1:], 1)
    try:
        n = float(text[:-1] if mult > 1 else text) * mult
    except ValueError:
        raise UsageError(f"{option} '{value}' is not a number", "e.g. 100M") from None
    if n < 0:
        raise UsageError(f"{option} {value} must not be negative")
    return int(n)


def parse_bytes(value: str | None) -> int | None:
    """``4G``, ``512M``, ``1.5GB``, ``2GiB`` or a byte count -> bytes (binary units)."""
    if value is None:
        return None
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
    try:
        n = float(text[:-1] if mult > 1 else text) * mult
    except ValueError:
        raise UsageError(f"--max-memory '{value}' is not a size", "e.g. 4G or 512M") from None
    if n <= 0:
        raise UsageError(f"--max-memory {value} must be positive")
    return int(n)


def parse_tile(value: str) -> str | int:
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"--tile '{value}' must be auto, 0 (no tiling) or a size in pixels") from None
    if n < 0:
        raise UsageError(f"--tile {value} must not be negative")
    return n


@click.command("denoise", epilog=EPILOG, short_help="Denoise images (files or folders).")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("-s", "--sigma", metavar="S|auto", default=None,
              help="Noise std in 8-bit units, or auto (estimate per image; the default).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output file (one input) or directory (created; mirrors --recursive trees).")
@click.option("-m", "--model", default="auto", show_default=True,
              help="Model name (see `n3 weights list`), or auto: chosen from sigma and colour.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--gray-on-color", type=click.Choice(GRAY_ON_COLOR_CHOICES), default="rgb",
              show_default=True, help="How a gray model treats colour images.")
@click.option("-r", "--recursive", is_flag=True, help="Walk sub-folders of input folders.")
@click.option("--suffix", default=DEFAULT_SUFFIX, show_default=True,
              help="Added to output names ('' with -o DIR keeps the names).")
@click.option("--format", "fmt", type=click.Choice(["png", "tiff", "tif", "jpg", "jpeg", "bmp", "webp"],
              case_sensitive=False), default=None, help="Output format (default: same as input).")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
              help="JPEG/WebP quality.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (default: skip them).")
@click.option("--in-place", is_flag=True, help="Replace each input by its result (still atomic).")
@click.option("--strip-metadata", is_flag=True, help="Do not copy EXIF, ICC profile or DPI.")
@click.option("--max-pixels", default=None, metavar="N",
              help=f"Refuse larger images (default {DEFAULT_MAX_PIXELS // 10**6}M; 0: no limit).")
@click.option("--dry-run", is_flag=True, help="Print the plan (what would be written) and stop.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout.")
@click.option("--progress/--no-progress", default=None,
              help="Progress on stderr (default: only on a terminal): live bars on a terminal, "
                   "plain periodic lines when stderr is a pipe or file.")
@click.option("--tile", default="auto", show_default=True, metavar="N|auto|0",
              help="Tile size for large images (0: whole image at once).")
@click.option("--tile-overlap", type=click.IntRange(0), default=None, metavar="N",
              help="Context pixels around tiles (default: exact, from the model).")
@click.option("--tile-mode", type=click.Choice(["exact", "blend"]), default="exact", show_default=True,
              help="exact: bit-identical to untiled; blend: less context, feathered seams.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32",
              show_default=True, help="Arithmetic precision of the convolutions.")
@click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
              help="Average over this many flips/rotations (slightly better, n times slower).")
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@click.option("--max-memory", default=None, metavar="SIZE", help="Memory budget for tiling, e.g. 4G.")
@click.option("--preview", is_flag=True,
              help="Also write a before/after sheet <output>_preview.png (see n3 compare).")
@click.option("--raw", is_flag=True, help="Input is a camera raw file (not supported yet).")
@click.pass_context
def denoise(ctx: click.Context, inputs: tuple[Path, ...], sigma: str | None, output: Path | None,
            model: str, device: str, gray_on_color: str, recursive: bool, suffix: str, fmt: str | None,
            quality: int, overwrite: bool, in_place: bool, strip_metadata: bool, max_pixels: str | None,
            dry_run: bool, as_json: bool, progress: bool | None, tile: str, tile_overlap: int | None,
            tile_mode: str, precision: str, ensemble: str, threads: int | None, max_memory: str | None,
            preview: bool, raw: bool) -> None:
    """Remove Gaussian noise from images with an N3Net.

    INPUT is one or more image files or folders. Without --sigma the noise level of
    each image is estimated. Messages go to stderr; stdout is for --json / --dry-run.
    """
    if raw:
        raise UsageError("--raw: camera raw denoising is not supported yet")
    if not inputs:
        raise UsageError("no input given", "e.g. n3 denoise photo.png --sigma 25 (see n3 denoise --help)")
    fmt_name = normalize_format(fmt) if fmt else None
    from n3cli.app.batch import DenoiseOptions, Denoiser, run_plan  # torch: only for real work
    from n3cli.app.distributed import gather_reports, join, share
    from n3cli.cli.denoise_report import ConsoleReporter, print_plan, print_summary
    from n3cli.io.atomic import install_signal_cleanup

    dist, device, threads = join(device, threads)  # torchrun: this rank's device and share
    opts = DenoiseOptions(
        sigma=parse_sigma(sigma), model=model, device=device, gray_on_color=gray_on_color,
        fmt=fmt_name, quality=quality, strip_metadata=strip_metadata,
        max_pixels=parse_count(max_pixels, "--max-pixels") if max_pixels is not None else DEFAULT_MAX_PIXELS,
        tile=parse_tile(tile), tile_overlap=tile_overlap, tile_mode=tile_mode, precision=precision,
        threads=threads, max_memory=parse_bytes(max_memory), ensemble=int(ensemble),
        preview=preview)
    full_plan = plan_batch(list(inputs), PlanOptions(output=output, suffix=suffix, fmt=fmt_name,
                                                     recursive=recursive, overwrite=overwrite,
                                                     in_place=in_place))
    plan = share(full_plan, dist)
    single = len(full_plan.items) == 1 and not any(p.is_dir() for p in inputs) and not dist.enabled
    if dry_run:
        if dist.is_main:
            print_plan(full_plan, as_json)
        return
    if single and plan.items[0].action == "fail":
        raise UsageError(plan.items[0].reason if str(plan.items[0].src) in plan.items[0].reason
                         else f"{plan.items[0].src}: {plan.items[0].reason}")
    show = progress if progress is not None else sys.stderr.isatty()
    reporter = ConsoleReporter(show_progress=show and dist.is_main, single=single, quiet_items=as_json,
                               label=f"n3[{dist.rank}/{dist.world}]" if dist.enabled else "n3",
                               live=sys.stderr.isatty())
    install_signal_cleanup()
    denoiser = Denoiser(opts, reporter)
    if sigma is None and plan.to_run():  # --sigma auto given explicitly needs no reminder
        reporter.note("no --sigma given: estimating each image's noise level (--sigma auto)")
    denoiser.preload()
    debug = bool(ctx.obj and ctx.obj.get("debug"))
    with reporter:
        try:
            report = run_plan(plan, denoiser.process, reporter, debug=debug)
        except KeyboardInterrupt as err:
            partial = getattr(err, "report", None)
            reporter.stop()
            code = 128 + getattr(err, "signum", 2)
            done = partial.count("ok") if partial else 0
            click.echo(f"n3: interrupted after {done} of {len(plan.items)} files; finished outputs are "
                       "complete and kept, rerun the same command to resume", err=True)
            if as_json and partial is not None:
                click.echo(json.dumps(partial.to_dict(), indent=2))
            ctx.exit(code)
            return
    merged = gather_reports(report, dist, [str(i.src) for i in full_plan.items])
    if merged is None:  # a torchrun rank other than 0: rank 0 reports for everyone
        ctx.exit(0)
        return
    report = merged
    if single and report.items and report.items[0].status == "failed" and not as_json:
        err = report.items[0].error
        if err is not None and debug:
            raise err
        click.echo(f"n3: error: {report.items[0].reason}", err=True)
        ctx.exit(report.items[0].exit_code or 1)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif not single:
        print_summary(report, reporter.console)
    ctx.exit(report.exit_code)


COMMANDS = [denoise]
