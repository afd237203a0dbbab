"""``n3 upscale``: its own options (scale, model); the rest is shared with ``n3 denoise``
in :mod:`n3cli.cli.batch_cmd`. The work lives in :mod:`n3cli.app.upscale`."""

from __future__ import annotations

from pathlib import Path

import click

from n3cli.cli.batch_cmd import job_fields, job_options, run_batch
from n3cli.errors import UsageError

EPILOG = """\b
Examples:
  n3 upscale photo.png --scale 2              -> photo_x2.png next to the input
  n3 upscale scan.tif --scale 3 -o big.tif    16-bit stays 16-bit, ICC kept, DPI x3
  n3 upscale photos/ --scale 4 -o big/ -r     a folder tree, mirrored; rerun to resume
  n3 upscale small.png --scale 2 --preview    also small_x2_preview.png (input beside output)
  torchrun --nproc-per-node 4 -m n3cli upscale photos/ -o big/ -r --scale 2

\b
Colour images: the luminance (BT.601 Y) goes through the network, the chroma is upscaled
by bicubic interpolation (MATLAB's); gray images are their own luminance. Alpha (unless
opaque) goes through the network too, the colours premultiplied by it (no dark fringes).
Outputs keep the format, bit depth, EXIF (not in TIFF) and ICC profile of the input;
DPI is multiplied by the scale (same print size).
--max-pixels is judged on the output size. Tiles (--tile) are in input pixels; exact
tiling gives the same pixels as a whole-image run. Batches, resume, atomic writes,
--dry-run, --json and exit codes are those of n3 denoise (see n3 denoise --help).
"""

SCALES = ("2", "3", "4")  # the factors the SR models are trained for


@click.command("upscale", epilog=EPILOG, short_help="Upscale images x2/x3/x4 (files or folders).")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("-s", "--scale", type=click.Choice(SCALES), required=True,
              help="Upscaling factor.")
@click.option("-m", "--model", default="auto", show_default=True,
              help="SR model (see `n3 weights list`); auto: the bundled n3net-sr.")
@job_options
@click.pass_context
def upscale(ctx: click.Context, inputs: tuple[Path, ...], scale: str, model: str, **kw) -> None:
    """Enlarge images by 2, 3 or 4 with an N3Net super-resolution model.

    INPUT is one or more image files or folders. Messages go to stderr; stdout is for
    --json / --dry-run.
    """
    if not inputs:
        raise UsageError("no input given", "e.g. n3 upscale photo.png --scale 2 (see n3 upscale --help)")
    factor = int(scale)

    def make_job(device: str, threads: int | None, reporter):
        from n3cli.app.upscale import UpscaleOptions, Upscaler  # torch: only for real work

        return Upscaler(UpscaleOptions(scale=factor, model=model, **job_fields(kw, device, threads)), reporter)

    from n3cli.app.upscale import upscale_suffix

    run_batch(ctx, inputs, kw, upscale_suffix(factor), make_job, "n3 upscale summary",
              earlier_suffixes=tuple(upscale_suffix(int(s)) for s in SCALES), scale=factor)


COMMANDS = [upscale]
