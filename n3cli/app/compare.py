"""Side-by-side comparison sheets: what ``n3 compare`` and ``n3 denoise --preview`` write.

One PNG: a column per image, labelled with its name; the whole image on top (scaled to
the panel width, with the crop region outlined), below it a zoomed crop of the same
region of every image, nearest-neighbour so that pixels stay visible; with a reference,
PSNR and SSIM of each image against it under its label. Images of different sizes (a
low-resolution input beside its upscaled output) are resampled to the largest for
display, so the crop shows the same part of the scene in every column. Pillow only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from n3cli.errors import UsageError
from n3cli.io.image import Image

BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
OUTLINE = (255, 64, 64)
GAP = 8


@dataclass(frozen=True)
class Crop:
    """A region ``x, y, w, h`` in pixels of the largest image."""

    x: int
    y: int
    w: int
    h: int

    @classmethod
    def parse(cls, text: str) -> "Crop":
        """``"x,y,w,h"`` -> Crop; a usage error otherwise."""
        try:
            x, y, w, h = (int(v) for v in text.split(","))
        except ValueError:
            raise UsageError(f"--crop '{text}' is not x,y,w,h", "four integers, e.g. --crop 100,80,64,64") from None
        if w <= 0 or h <= 0 or x < 0 or y < 0:
            raise UsageError(f"--crop {text}: x and y must be >= 0, w and h > 0")
        return cls(x, y, w, h)


@dataclass
class Panel:
    """One column: its label and pixels (float32 H x W x C in [0, 1])."""

    label: str
    pixels: np.ndarray
    metrics: str = ""


def _to_rgb8(pixels: np.ndarray) -> np.ndarray:
    a = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.rint(a * 255).astype(np.uint8)


def _resize(a: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    """uint8 H x W x 3 to (width, height); nearest up, Lanczos down unless ``nearest``."""
    if (a.shape[1], a.shape[0]) == size:
        return a
    up = size[0] >= a.shape[1]
    resample = PILImage.Resampling.NEAREST if (nearest or up) else PILImage.Resampling.LANCZOS
    return np.asarray(PILImage.fromarray(a).resize(size, resample))


def detailed_crop(pixels: np.ndarray, w: int, h: int) -> Crop:
    """The ``w x h`` window of ``pixels`` (H x W [x C]) with the most gradient energy,
    searched on a grid of quarter-window steps."""
    g = np.asarray(pixels, dtype=np.float32)
    g = g.mean(axis=2) if g.ndim == 3 else g
    H, W = g.shape
    w, h = min(w, W), min(h, H)
    energy = np.zeros_like(g)
    energy[:, 1:] += np.abs(np.diff(g, axis=1))
    energy[1:, :] += np.abs(np.diff(g, axis=0))
    integral = np.pad(energy, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    best, where = -1.0, (0, 0)
    for y in range(0, H - h + 1, max(1, h // 4)):
        for x in range(0, W - w + 1, max(1, w // 4)):
            e = integral[y + h, x + w] - integral[y, x + w] - integral[y + h, x] + integral[y, x]
            if e > best:
                best, where = float(e), (x, y)
    return Crop(where[0], where[1], w, h)


def metrics_label(pixels: np.ndarray, reference: np.ndarray) -> str:
    """"PSNR .. dB  SSIM .." of ``pixels`` against ``reference`` (n/a when shapes differ)."""
    from n3cli.eval.metrics import psnr, ssim

    if pixels.shape != reference.shape:
        return "PSNR/SSIM n/a (size or channels differ)"
    return f"PSNR {psnr(reference, pixels):.2f} dB  SSIM {ssim(reference, pixels):.4f}"


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def compare_sheet(images: list[Image], labels: list[str], reference: Image | None = None,
                  crop: Crop | None = None, zoom: int = 4, panel_width: int = 512,
                  reference_label: str = "") -> PILImage.Image:
    """The comparison sheet of ``images`` (at least one) as an RGB Pillow image.

    ``crop`` is in pixels of the largest image (default: its most detailed region of
    ``panel_width / zoom`` pixels across); ``zoom`` is the crop's magnification on the
    sheet; ``panel_width`` caps each column's width. With ``reference`` each label gets
    PSNR/SSIM against it (same size and channels only) and the reference is the last column.
    """
    if not images:
        raise UsageError("nothing to compare", "give two or more images")
    if zoom < 1:
        raise UsageError(f"--zoom {zoom} must be at least 1")
    panels = [Panel(lab, im.pixels) for im, lab in zip(images, labels)]
    if reference is not None:
        for p in panels:
            p.metrics = metrics_label(p.pixels, reference.pixels)
        panels.append(Panel(f"reference {reference_label}".strip(), reference.pixels))
    big_w = max(p.pixels.shape[1] for p in panels)
    big_h = max(p.pixels.shape[0] for p in panels)
    rgb = [_resize(_to_rgb8(p.pixels), (big_w, big_h), nearest=True) for p in panels]
    col_w = min(panel_width, big_w * zoom)
    if crop is None:  # the most detailed square of the reference (else the first image)
        side = max(1, col_w // zoom)
        crop = detailed_crop(rgb[-1 if reference is not None else 0], min(side, big_w), min(side, big_h))
    if crop.x + crop.w > big_w or crop.y + crop.h > big_h:
        raise UsageError(f"--crop {crop.x},{crop.y},{crop.w},{crop.h} is outside the {big_w}x{big_h} image")
    scale = min(1.0, col_w / big_w)
    full_size = (max(1, round(big_w * scale)), max(1, round(big_h * scale)))
    zoom_size = (crop.w * zoom, crop.h * zoom)
    col_w = max(full_size[0], zoom_size[0])
    font = _font(14)
    line = 18
    text_h = line * (2 if reference is not None else 1) + 4
    height = GAP + text_h + full_size[1] + GAP + zoom_size[1] + GAP
    sheet = PILImage.new("RGB", (GAP + len(panels) * (col_w + GAP), height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (p, a) in enumerate(zip(panels, rgb)):
        x0 = GAP + i * (col_w + GAP)
        draw.text((x0, GAP), _fit(p.label, font, col_w), fill=TEXT, font=font)
        if p.metrics:
            draw.text((x0, GAP + line), _fit(p.metrics, font, col_w), fill=TEXT, font=font)
        y_full = GAP + text_h
        sheet.paste(PILImage.fromarray(_resize(a, full_size, nearest=False)), (x0, y_full))
        box = [x0 + crop.x * scale, y_full + crop.y * scale,
               x0 + (crop.x + crop.w) * scale - 1, y_full + (crop.y + crop.h) * scale - 1]
        draw.rectangle(box, outline=OUTLINE, width=2)
        region = a[crop.y:crop.y + crop.h, crop.x:crop.x + crop.w]
        zoomed = region.repeat(zoom, axis=0).repeat(zoom, axis=1)
        sheet.paste(PILImage.fromarray(zoomed), (x0, y_full + full_size[1] + GAP))
    return sheet


def _fit(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """``text`` shortened from the left with an ellipsis until it fits ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength("..." + text) > width:
        text = text[1:]
    return "..." + text


def write_compare(inputs: list[Path], output: Path, reference: Path | None = None, crop: Crop | None = None,
                  zoom: int = 4, panel_width: int = 512, overwrite: bool = True) -> Path:
    """Read ``inputs`` (and ``reference``), write their sheet to ``output`` (PNG, atomically)."""
    from n3cli.io import read_image

    output = Path(output)
    if output.suffix.lower() != ".png":
        raise UsageError(f"-o {output}: a comparison sheet is a PNG", "name the output *.png")
    named = [Path(p) for p in inputs] + ([Path(reference)] if reference else [])
    if any(output.resolve() == p.resolve() for p in named):
        raise UsageError(f"-o {output} would overwrite an input", "choose another output name")
    if output.exists() and not overwrite:
        raise UsageError(f"{output} exists", "use --overwrite")
    for p in named:  # the same answer (exit 2) for every input, reference included
        if p.is_dir():
            raise UsageError(f"{p} is a folder", "n3 compare takes image files")
        if not p.exists():
            raise UsageError(f"{p}: no such file")
    inputs = [Path(p) for p in inputs]
    images = [read_image(p) for p in inputs]
    ref = read_image(reference) if reference else None
    sheet = compare_sheet(images, [p.name for p in inputs], ref, crop, zoom, panel_width,
                          reference_label=Path(reference).name if reference else "")
    return write_sheet(sheet, output)


def write_sheet(sheet: PILImage.Image, output: Path) -> Path:
    """Write a sheet as an 8-bit RGB PNG through the atomic image writer."""
    from n3cli.io import write_image

    pixels = np.asarray(sheet, dtype=np.float32) / 255.0
    write_image(output, Image(pixels=pixels, bit_depth=8), fmt="png")
    return output
