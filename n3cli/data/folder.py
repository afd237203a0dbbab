"""Training image folders, loaded once into memory as uint8.

The training loop never decodes images: every image is read here once, converted
(gray with the paper's formula, or RGB) and packed into one flat ``ImageBank`` so that
batches of random crops are one gather, on the CPU or on the GPU.

Test sets must never be trained on: BSDS500 ``val`` holds the BSD68 test images, so a
folder named ``val`` (or a known test set) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from n3cli.data.colorspace import rgb_to_y
from n3cli.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")
# Folder names that hold test images: training on them would make results meaningless.
# They are refused anywhere on the path (Set5/HR, Urban100/image_SRF_4), except "val",
# which only the folder itself may be called (a parent named val is someone's choice).
TEST_SET_DIRS = ("bsd68", "cbsd68", "set12", "set5", "set14", "b100", "bsd100", "urban100", "manga109",
                 "kodak24", "mcmaster")
# Paper gray conversion (spec section 3): PIL's 'L' with these coefficients, uint8.
PAPER_GRAY_MATRIX = (0.2989, 0.5870, 0.1140, 0)


def check_training_folder(folder: Path) -> None:
    """Refuse a folder that is (or lies inside) a test set (symlinks resolved)."""
    real = Path(folder).resolve()
    if real.name.lower() == "val":
        # BSDS500 val holds BSD68/CBSD68, and its other 32 images are the validation set
        # the bundled denoisers are chosen on (n3 eval --dataset val32).
        raise UsageError(f"refusing to train on '{folder}': a 'val' folder holds test set images",
                         "BSDS500 val holds the BSD68 test images and the val32 validation "
                         "images; train on train + test")
    hit = next((p.name for p in (real, *real.parents) if p.name.lower() in TEST_SET_DIRS), None)
    if hit is not None:
        raise UsageError(f"refusing to train on '{folder}': '{hit}' is a test set",
                         "scores on a set trained on mean nothing; train on BSDS500 train + test "
                         "or your own images")


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"data folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"no images in {folder}", f"expected files ending in {', '.join(IMAGE_SUFFIXES)}")
    return files


def read_image(path: Path, color: str, role: str = "training") -> np.ndarray:
    """Decode one image as H x W x C uint8; ``color`` is "gray" (paper formula), "rgb", or
    "y" (BT.601 luminance as MATLAB's rgb2ycbcr, rounded: the super-resolution input).
    ``role`` names the image in errors ("training", "validation")."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == "F" or img.mode.startswith("RGB;32"):
                raise UsageError(f"{role} image {path} has float samples",
                                 "convert it to an 8- or 16-bit PNG")
            if img.mode.startswith("I"):  # 16-bit gray (I;16*, or I from TIFF): to 8 bits, rounded
                wide = np.asarray(img).astype(np.float64)
                if wide.min() < 0 or wide.max() > 65535:
                    raise UsageError(f"{role} image {path} has 32-bit integer samples",
                                     "convert it to an 8- or 16-bit PNG")
                img = Image.fromarray(np.rint(wide / 257.0).astype(np.uint8), "L")
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")
            if color == "gray":
                img = img if img.mode == "L" else img.convert("L", PAPER_GRAY_MATRIX)
            elif color == "rgb":
                img = img.convert("RGB")
            elif color == "y":
                rgb = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
                return np.rint(rgb_to_y(rgb) * 255.0).astype(np.uint8)[..., None]
            else:
                raise UsageError(f"unknown colour mode '{color}'", "use gray, rgb or y")
            arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {role} image {path}: {err}") from None
    return arr[..., None] if arr.ndim == 2 else arr


@dataclass
class ImageBank:
    """Images of any sizes packed into one flat (pixels, C) uint8 tensor.

    ``offsets[i]`` is the first pixel of image i (row-major), ``heights``/``widths`` its
    size. Everything lives on one device, so crops never leave it.
    """

    pixels: torch.Tensor  # (total_pixels, C) uint8
    offsets: torch.Tensor  # (N,) int64
    heights: torch.Tensor  # (N,) int64
    widths: torch.Tensor  # (N,) int64
    names: list[str]

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[1])

    def __len__(self) -> int:
        return len(self.names)

    def to(self, device: torch.device) -> "ImageBank":
        return ImageBank(self.pixels.to(device), self.offsets.to(device), self.heights.to(device),
                         self.widths.to(device), self.names)

    def image(self, i: int) -> torch.Tensor:
        """Image i as a (C, H, W) uint8 tensor (for tests and validation)."""
        h, w, o = int(self.heights[i]), int(self.widths[i]), int(self.offsets[i])
        return self.pixels[o:o + h * w].reshape(h, w, -1).permute(2, 0, 1)


def build_bank(images: list[np.ndarray], names: list[str]) -> ImageBank:
    sizes = [(a.shape[0], a.shape[1]) for a in images]
    counts = torch.tensor([h * w for h, w in sizes], dtype=torch.int64)
    offsets = torch.cumsum(counts, 0) - counts
    flat = np.concatenate([a.reshape(-1, a.shape[2]) for a in images], axis=0)
    return ImageBank(torch.from_numpy(flat), offsets,
                     torch.tensor([h for h, _ in sizes], dtype=torch.int64),
                     torch.tensor([w for _, w in sizes], dtype=torch.int64), names)


def training_files(folders: list[Path], limit: int = 0, holdout: int = 0) -> tuple[list[Path], list[Path]]:
    """The training images of ``folders`` (refusing test sets) and those held out of them.

    ``limit`` > 0 keeps only the first ``limit`` images in sorted order (smoke tests);
    ``holdout`` > 0 then sets aside that many, evenly spread over the sorted list, as a
    validation set that is not a test set (images the model never trains on).
    """
    files: list[Path] = []
    for folder in folders:
        check_training_folder(folder)
        files += list_images(folder)
    if limit > 0:
        files = files[:limit]
    if holdout <= 0:
        return files, []
    if holdout >= len(files):
        raise UsageError(f"data.holdout {holdout} leaves no training image of {len(files)}",
                         "hold out fewer images")
    picked = {round((i + 0.5) * len(files) / holdout - 0.5) for i in range(holdout)}
    return ([f for i, f in enumerate(files) if i not in picked],
            [f for i, f in enumerate(files) if i in picked])


def load_training_bank(folders: list[Path], color: str, min_size: int, limit: int = 0,
                       holdout: int = 0) -> ImageBank:
    """Load the training images of ``folders`` (:func:`training_files`) into an
    :class:`ImageBank`. Images smaller than ``min_size`` (the crop) on a side are an
    error, not skipped.
    """
    files, _ = training_files(folders, limit, holdout)
    images = []
    for f in files:
        a = read_image(f, color)
        if min(a.shape[:2]) < min_size:
            raise UsageError(f"training image {f} is {a.shape[1]}x{a.shape[0]}, smaller than the "
                             f"{min_size}px crop", "remove it or lower data.crop")
        images.append(a)
    return build_bank(images, [f.name for f in files])


def load_validation_images(files: list[Path], color: str, count: int, crop: int = 0) -> list[tuple[str, np.ndarray]]:
    """The first ``count`` of ``files`` (e.g. :func:`list_images` of a folder), centre-cropped
    to ``crop`` if > 0."""
    out = []
    for f in files[:count]:
        a = read_image(f, color, "validation")
        if crop > 0:
            h, w = a.shape[:2]
            ch, cw = min(crop, h), min(crop, w)
            top, left = (h - ch) // 2, (w - cw) // 2
            a = a[top:top + ch, left:left + cw]
        out.append((f.name, np.ascontiguousarray(a)))
    return out
