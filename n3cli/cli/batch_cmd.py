"""What the batch commands (``n3 denoise``, ``n3 upscale``) share: their file, output,
engine and report options, and running a plan with its report, interrupts, torchrun
ranks and exit codes. The work itself is in :mod:`n3cli.app`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from n3cli.cli.options import PRECISION_CHOICES
from n3cli.errors import UsageError
from n3cli.io.image import DEFAULT_MAX_PIXELS


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


def parse_tile(value: str) -> str | int:
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise UsageError(f"--tile '{value}' must be auto, 0 (no tiling) or a size in pixels") from None
    from n3cli.engine.tiling import check_tile  # here: torch loads only for jobs that run

    check_tile(n)  # before any file: one message, not one per file
    return n


def job_options(f: Callable) -> Callable:
    """The options every batch command takes (files, outputs, engine, reports)."""
    opts = [
        click.option("-o", "--output", type=click.Path(path_type=str), default=None,
                     help="Output file (one input) or directory (created; mirrors --recursive trees)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
        click.option("-r", "--recursive", is_flag=True, help="Walk sub-folders of input folders."),
        click.option("--suffix", default=None,
                     help="Added to output names (default per command; '' with -o DIR keeps the names)."),
        click.option("--format", "fmt", type=click.Choice(["png", "tiff", "tif", "jpg", "jpeg", "bmp", "webp"],
                     case_sensitive=False), default=None, help="Output format (default: same as input)."),
        click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True,
                     help="JPEG/WebP quality."),
        click.option("--overwrite", is_flag=True, help="Replace existing outputs (default: skip them)."),
        click.option("--in-place", is_flag=True, help="Replace each input by its result (still atomic)."),
        click.option("--strip-metadata", is_flag=True, help="Do not copy EXIF, ICC profile or DPI."),
        click.option("--max-pixels", default=None, metavar="N",
                     help=f"Refuse larger outputs (default {DEFAULT_MAX_PIXELS // 10**6}M; 0: no limit)."),
        click.option("--dry-run", is_flag=True, help="Print the plan (what would be written) and stop."),
        click.option("--json", "as_json", is_flag=True, help="Print a JSON report on stdout."),
        click.option("--progress/--no-progress", default=None,
                     help="Progress on stderr (default: only on a terminal): live bars on a terminal, "
                          "plain periodic lines when stderr is a pipe or file."),
        click.option("--tile", default="auto", show_default=True, metavar="N|auto|0",
                     help="Tile size for large images, input pixels (0: whole image at once)."),
        click.option("--tile-overlap", type=click.IntRange(0), default=None, metavar="N",
                     help="Context pixels around tiles (default: exact, from the model)."),
        click.option("--tile-mode", type=click.Choice(["exact", "blend"]), default="exact", show_default=True,
                     help="exact: identical to untiled; blend: less context, feathered seams."),
        click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="fp32",
                     show_default=True, help="Arithmetic precision of the convolutions."),
        click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
                     help="Average over this many flips/rotations (slightly better, n times slower)."),
        click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch."),
        click.option("--max-memory", default=None, metavar="SIZE", help="Memory budget for tiling, e.g. 4G."),
        click.option("--preview", is_flag=True,
                     help="Also write a before/after sheet <output>_preview.png (see n3 compare)."),
    ]
    for option in reversed(opts):
        f = option(f)
    return f


def max_pixels_option(kw: dict[str, Any]) -> int:
    """``--max-pixels`` as a count (the default limit when not given)."""
    given = kw["max_pixels"]
    return parse_count(given, "--max-pixels") if given is not None else DEFAULT_MAX_PIXELS


def job_fields(kw: dict[str, Any], device: str, threads: int | None) -> dict[str, Any]:
    """The :class:`n3cli.app.batch.JobOptions` fields from the shared options."""
    from n3cli.engine.memory import parse_size  # here: torch loads only for jobs that run
    from n3cli.io.formats import normalize_format

    return dict(device=device, fmt=normalize_format(kw["fmt"]) if kw["fmt"] else None,
                quality=kw["quality"], strip_metadata=kw["strip_metadata"],
                max_pixels=max_pixels_option(kw),
                tile=parse_tile(kw["tile"]), tile_overlap=kw["tile_overlap"], tile_mode=kw["tile_mode"],
                precision=kw["precision"], threads=threads, max_memory=parse_size(kw["max_memory"]),
                ensemble=int(kw["ensemble"]), preview=kw["preview"])


def run_batch(ctx: click.Context, inputs: tuple[Path, ...], kw: dict[str, Any], default_suffix: str,
              make_job: Callable[[str, int | None, Any], Any], title: str,
              start_note: Callable[[Any], str | None] = lambda plan: None, raw_inputs: bool = False,
              render: str | None = None, raw_only: bool = False, earlier_suffixes: tuple[str, ...] = (),
              scale: int = 1) -> None:
    """Plan ``inputs``, share the plan among torchrun ranks, run ``make_job(device,
    threads, reporter)``'s ``process`` on this rank's items, report and exit.
    ``raw_inputs``: camera raw files are inputs (written as DNG), not skipped; ``raw_only``:
    every other input fails (``--raw``); ``render``: each raw's DNG also gets an sRGB
    rendering in that format (planned like any output); ``earlier_suffixes``: folder walks
    also skip files named like the command's other outputs (besides the suffix in use);
    ``scale``: the outputs' size over the inputs' (an upscaler's), for ``--dry-run``'s checks.

    Exit codes: 0 all done, 1 some file failed (on any rank), 2 usage error, 128+signal
    when interrupted (finished outputs are kept; rerunning resumes).
    """
    from n3cli.app.distributed import join
    from n3cli.engine.distributed import shutdown

    dist, device, threads = join(kw["device"], kw["threads"])  # torchrun: this rank's device, share
    try:
        _run_batch(ctx, inputs, kw, default_suffix, make_job, title, start_note, raw_inputs,
                   raw_only, earlier_suffixes, render, dist, device, threads, scale)
    finally:
        # Every path, interrupted and dry runs too: a group left to the interpreter's exit
        # can abort it (engine.distributed.shutdown).
        shutdown(dist)


def _run_batch(ctx: click.Context, inputs: tuple[Path, ...], kw: dict[str, Any], default_suffix: str,
               make_job: Callable[[str, int | None, Any], Any], title: str,
               start_note: Callable[[Any], str | None], raw_inputs: bool, raw_only: bool,
               earlier_suffixes: tuple[str, ...], render: str | None, dist: Any, device: str, threads: int | None,
               scale: int) -> None:
    from n3cli.app.batch import run_plan
    from n3cli.app.distributed import gather_reports, share
    from n3cli.cli.batch_report import ConsoleReporter, print_plan, print_summary
    from n3cli.io.atomic import install_signal_cleanup
    from n3cli.io.batch import PlanOptions, plan_batch, vet_plan_sizes
    from n3cli.io.formats import normalize_format

    suffix = default_suffix if kw["suffix"] is None else kw["suffix"]
    if "/" in suffix or "\\" in suffix or suffix in (".", ".."):
        raise UsageError(f"--suffix '{suffix}' is not part of a file name", "use -o DIR to write elsewhere")
    fmt_name = normalize_format(kw["fmt"]) if kw["fmt"] else None
    full_plan = plan_batch(list(inputs), PlanOptions(output=kw["output"], suffix=suffix, fmt=fmt_name,
                                                     recursive=kw["recursive"], overwrite=kw["overwrite"],
                                                     in_place=kw["in_place"], raw=raw_inputs, raw_only=raw_only,
                                                     earlier_suffixes=earlier_suffixes,
                                                     preview=kw["preview"], render=render))
    plan = share(full_plan, dist)
    single = len(full_plan.items) == 1 and not any(p.is_dir() for p in inputs) and not dist.enabled
    as_json = kw["as_json"]
    if kw["dry_run"]:
        # The real run's usage errors in the engine options (--tile 8, --max-memory lots),
        # which it raises only when the job is made.
        from n3cli.engine.memory import parse_size

        parse_tile(kw["tile"])
        parse_size(kw["max_memory"])
        # What the real run would say: an item it would refuse is a failure now too (for a
        # single input, the real run's usage error; exit 1 for a size, as a failed read).
        refused = any(i.action == "fail" for i in full_plan.items)
        too_big = vet_plan_sizes(full_plan, fmt_name, max_pixels_option(kw), scale)
        if dist.is_main:
            print_plan(full_plan, as_json)
        ctx.exit((2 if single else 1) if refused else 1 if too_big else 0)
        return
    if single and plan.items[0].action == "fail":
        raise UsageError(plan.items[0].reason if str(plan.items[0].src) in plan.items[0].reason
                         else f"{plan.items[0].src}: {plan.items[0].reason}")
    progress = kw["progress"]
    show = progress if progress is not None else sys.stderr.isatty()
    reporter = ConsoleReporter(show_progress=show and dist.is_main, single=single, quiet_items=as_json,
                               label=f"n3[{dist.rank}/{dist.world}]" if dist.enabled else "n3",
                               live=sys.stderr.isatty())
    job = make_job(device, threads, reporter)
    install_signal_cleanup()
    note = start_note(plan) if plan.to_run() else None
    if note:
        reporter.note(note)
    job.preload()
    debug = bool(ctx.obj and ctx.obj.get("debug"))
    with reporter:
        try:
            report = run_plan(plan, job.process, reporter, debug=debug)
        except KeyboardInterrupt as err:
            partial = getattr(err, "report", None)
            reporter.stop()
            code = 128 + getattr(err, "signum", 2)
            done = partial.count("ok") if partial else 0
            skipped = partial.count("skipped") if partial else 0
            already = f" ({skipped} already done)" if skipped else ""
            click.echo(f"n3: interrupted after {done + skipped} of {len(plan.items)} files{already}; "
                       "finished outputs are complete and kept, rerun the same command to resume", err=True)
            if as_json and partial is not None:
                click.echo(json.dumps(partial.to_dict(), indent=2))
            ctx.exit(code)
            return
    merged = gather_reports(report, dist, [str(i.src) for i in full_plan.items])
    if merged is None:  # a torchrun rank other than 0: rank 0 reports for everyone
        ctx.exit(0)
        return
    report = merged
    if single and report.items and report.items[0].status == "failed":
        err = report.items[0].error
        if err is not None and debug:
            raise err
        click.echo(f"n3: error: {report.items[0].reason}", err=True)
        if as_json:  # the error line on stderr, the report on stdout
            click.echo(json.dumps(report.to_dict(), indent=2))
        ctx.exit(report.items[0].exit_code or 1)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif not single:
        print_summary(report, reporter.console, title)
    ctx.exit(report.exit_code)


