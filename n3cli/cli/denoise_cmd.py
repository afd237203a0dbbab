"""``n3 denoise``: its own options (sigma, model); the rest is shared with ``n3 upscale``
in :mod:`n3cli.cli.batch_cmd`. The work lives in :mod:`n3cli.app`."""

from __future__ import annotations

from pathlib import Path

import click

from n3cli.cli.batch_cmd import job_fields, job_options, run_batch
from n3cli.cli.options import GRAY_ON_COLOR_CHOICES
from n3cli.errors import UsageError
from n3cli.io.batch import DEFAULT_SUFFIX

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
  n3 denoise IMG_0042.CR2                   camera raw -> IMG_0042_denoised.dng
  n3 denoise IMG_0042.NEF --render tiff     ... and a 16-bit sRGB TIFF beside it
  n3 denoise IMG_0042.NEF -o photo.tif      the 16-bit sRGB rendering instead of a DNG
  n3 denoise IMG.ARW --noise 0.002,4e-6     Poisson-Gaussian noise a,b given (normalised)

\b
Output: same format, bit depth and channels as the input (PNG, TIFF, JPEG at
quality 95 with 4:4:4 chroma, BMP, WebP; other formats become PNG); alpha passes
through untouched; EXIF (orientation reset: pixels are written upright; not into TIFF),
ICC profile and DPI are carried over unless --strip-metadata. Float TIFFs stay float.

\b
Safety: outputs are written to a temp file and renamed (Ctrl-C leaves no partial
files); inputs are never overwritten unless --in-place; existing outputs are skipped
unless --overwrite; hidden files, non-images and earlier outputs (*_denoised.*) in
folders are skipped. A failed file never stops a batch: a summary follows and the
exit code is 1. Usage errors exit with 2.

\b
Sigma is in 8-bit units (0-255) whatever the bit depth.

\b
Camera raw files (any Bayer raw LibRaw reads: CR2/CR3, NEF, ARW, RAF, ORF, RW2, DNG,
...) are denoised on the sensor mosaic, before demosaicing, and written as a DNG a raw
developer opens like the original. Their noise is Poisson-Gaussian per CFA plane,
variance a*x + b on [0, 1]: --noise, else the DNG NoiseProfile tag, else estimated
from the image; the (a, b) used is reported (--json too).
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
    from n3cli.data.estimate import check_sigma_value  # numpy only

    return check_sigma_value(sigma, "--sigma")


@click.command("denoise", epilog=EPILOG, short_help="Denoise images (files or folders).")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("-s", "--sigma", metavar="S|auto", default=None,
              help="Noise std in 8-bit units, or auto (estimate per image; the default).")
@click.option("-m", "--model", default="auto", show_default=True,
              help="Model name (see `n3 weights list`), or auto: chosen from sigma and colour.")
@click.option("--gray-on-color", type=click.Choice(GRAY_ON_COLOR_CHOICES), default="rgb",
              show_default=True, help="How a gray model treats colour images.")
@job_options
@click.option("--noise", metavar="A,B", default=None,
              help="Raw files: Poisson-Gaussian noise a,b (normalised units), or 8 numbers, one pair "
                   "per CFA position. Default: the file's NoiseProfile, else estimated.")
@click.option("--render", type=click.Choice(["tiff", "png"]), default=None,
              help="Raw files: also write a 16-bit sRGB rendering of the DNG (through LibRaw); "
                   "-o NAME.tif|png writes the rendering instead of the DNG.")
@click.option("--raw", is_flag=True, help="Every input must be a camera raw (raws are recognised anyway).")
@click.pass_context
def denoise(ctx: click.Context, inputs: tuple[Path, ...], sigma: str | None, model: str, gray_on_color: str,
            noise: str | None, render: str | None, raw: bool, **kw) -> None:
    """Remove noise from images and camera raw files with an N3Net.

    INPUT is one or more image files or folders. Without --sigma the noise level of
    each image is estimated. Messages go to stderr; stdout is for --json / --dry-run.
    """
    if not inputs:
        raise UsageError("no input given", "e.g. n3 denoise photo.png --sigma 25 (see n3 denoise --help)")
    level = parse_sigma(sigma)
    if noise is not None:
        from n3cli.app.raw import parse_noise  # numpy only

        noise_pairs = parse_noise(noise)
    else:
        noise_pairs = None

    def make_job(device: str, threads: int | None, reporter):
        from n3cli.app.batch import DenoiseOptions, Denoiser  # torch: only for real work

        opts = DenoiseOptions(sigma=level, model=model, gray_on_color=gray_on_color, noise=noise_pairs,
                              render=render, **job_fields(kw, device, threads))
        return Denoiser(opts, reporter)

    def start_note(plan) -> str | None:  # --sigma auto given explicitly needs no reminder
        images = [i for i in plan.to_run() if not i.raw]
        if len(images) == len(plan.to_run()) and (noise is not None or render is not None):
            return "--noise and --render are for camera raw files: there are none among the inputs"
        return ("no --sigma given: estimating each image's noise level (--sigma auto)"
                if sigma is None and images else None)

    run_batch(ctx, inputs, kw, DEFAULT_SUFFIX, make_job, "n3 denoise summary", start_note, raw_inputs=True,
              raw_only=raw, render=render)


COMMANDS = [denoise]
