"""``n3 compare``: a side-by-side sheet of images, with zoomed crops and PSNR/SSIM."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  n3 compare noisy.png noisy_denoised.png -o compare.png
  n3 compare in.png a.png b.png --reference clean.png -o c.png   PSNR/SSIM under each
  n3 compare lr.png lr_x3.png -o c.png --crop 200,120,64,64 --zoom 6

\b
Columns: the images in the order given (then the reference). Top row: each whole image
(scaled to --width), the crop region outlined; bottom row: the crop, magnified --zoom
times with nearest-neighbour so pixels stay visible. Images of different sizes (an input
and its upscaled output) are resampled to the largest for display; --crop is in that
largest image's pixels (default: its most detailed region). 16-bit and float images
are shown as 8-bit; alpha is not shown.
"""


@click.command("compare", epilog=EPILOG, short_help="Side-by-side sheet of images (zoomed crops, PSNR).")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("compare.png"),
              show_default=True, help="The sheet to write (PNG).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="Ground truth: adds PSNR/SSIM of each image against it, and its column.")
@click.option("--crop", default=None, metavar="X,Y,W,H", help="Region to magnify, in pixels.")
@click.option("--zoom", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Magnification of the crop.")
@click.option("--width", "panel_width", type=click.IntRange(64, 8192), default=512, show_default=True,
              help="Largest width of one column, in pixels.")
@click.option("--overwrite/--no-overwrite", default=True, show_default=True,
              help="Replace an existing sheet.")
def compare(images: tuple[Path, ...], output: Path, reference: Path | None, crop: str | None, zoom: int,
            panel_width: int, overwrite: bool) -> None:
    """Put IMAGES side by side in one PNG, with a magnified crop of the same region of each."""
    from n3cli.app.compare import Crop, write_compare
    from n3cli.errors import UsageError

    if len(images) < 2 and reference is None:
        raise UsageError("one image is nothing to compare", "give two or more, or add --reference")
    path = write_compare(list(images), output, reference, Crop.parse(crop) if crop else None, zoom,
                         panel_width, overwrite)
    click.echo(f"n3: wrote {path}", err=True)


COMMANDS = [compare]
