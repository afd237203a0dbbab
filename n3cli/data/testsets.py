"""The standard denoising test sets, read from a folder laid out like ``shared/datasets``.

Layout: ``Set12/*.png`` (gray), ``CBSD68/*.png`` (colour, named by BSDS id),
``BSD68/*.png`` (DnCNN's MATLAB-gray PNGs, "kair" protocol only),
``Urban100/image_SRF_4/*_HR.png`` (colour); ``BSDS500/data/images/val/*.jpg`` less the
CBSD68 ids for the validation sets ``val32`` / ``cval32``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from n3cli.errors import ImageReadError, UsageError

#: The paper's gray conversion (spec section 3): PIL ``convert('L', matrix)``.
PAPER_GRAY_MATRIX = (0.2989, 0.5870, 0.1140, 0)

#: The last two are not test sets: val32 / cval32 (gray / colour) are the 32 BSDS500 "val"
#: images that BSD68 / CBSD68 leave out. No bundled denoiser trains on them (BSDS500
#: train + test), so models are compared there, never on the test sets.
DATASETS = ("set12", "bsd68", "urban100", "cbsd68", "val32", "cval32")
#: The sets above that are not test sets (``validation.dataset`` of a training config).
VALIDATION_SETS = ("val32", "cval32")
#: ``--dataset all``: the paper's order, one noise stream through all three.
PAPER_ORDER = ("set12", "bsd68", "urban100")
#: paper: float noise and output; real: the paper's noise stream, the noisy image clipped and
#: rounded to 8 bits like a real file, output too; kair: DnCNN's PNGs and seeds.
PROTOCOLS = ("paper", "real", "kair")


@dataclass(frozen=True)
class DatasetSpec:
    """Where a test set's files are and how they become test images."""

    name: str
    folder: str  # relative to the data root
    pattern: str
    color: bool  # images are evaluated in RGB
    gray: str = "none"  # "paper": PIL matrix conversion; "libpng": OpenCV's imread (kair); "none"
    exclude: str = ""  # a folder (relative to the data root) whose file names are left out


def dataset_spec(name: str, protocol: str = "paper") -> DatasetSpec:
    """The :class:`DatasetSpec` of ``name`` under ``protocol`` (see :data:`PROTOCOLS`)."""
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol '{protocol}'", f"use one of {', '.join(PROTOCOLS)}")
    kair = protocol == "kair"
    table = {
        "set12": DatasetSpec("set12", "Set12", "*.png", False),
        # Paper: CBSD68 converted on the fly; kair: DnCNN's MATLAB rgb2gray PNGs.
        "bsd68": DatasetSpec("bsd68", "BSD68", "*.png", False) if kair
        else DatasetSpec("bsd68", "CBSD68", "*.png", False, "paper"),
        "urban100": DatasetSpec("urban100", "Urban100/image_SRF_4", "*_HR.png", False,
                            "libpng" if kair else "paper"),
        "cbsd68": DatasetSpec("cbsd68", "CBSD68", "*.png", True),
        "val32": DatasetSpec("val32", "BSDS500/data/images/val", "*.jpg", False, "paper", "CBSD68"),
        "cval32": DatasetSpec("cval32", "BSDS500/data/images/val", "*.jpg", True, "none", "CBSD68"),
    }
    if name not in table:
        raise UsageError(f"unknown dataset '{name}'", f"use one of {', '.join(DATASETS)}")
    return table[name]


def default_data_dir() -> Path:
    """``$N3_DATA``, else ``../shared/datasets`` next to the repository, else a usage error."""
    env = os.environ.get("N3_DATA")
    if env:
        return Path(env).expanduser()
    import n3cli

    guess = Path(n3cli.__file__).resolve().parent.parent.parent / "shared" / "datasets"
    if guess.is_dir():
        return guess
    raise UsageError("no test data folder found",
                     "pass --data-dir DIR or set N3_DATA (a folder with Set12/, CBSD68/, Urban100/)")


def list_images(ts: DatasetSpec, data_dir: Path | None = None) -> list[Path]:
    """The set's files in sorted file-name order (the order the noise stream follows)."""
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root / ts.folder
    files = sorted(folder.glob(ts.pattern), key=lambda p: p.name)
    if ts.exclude:
        # Without the list of test images the "validation" set could hold them: refuse.
        left_out = {p.stem for p in (root / ts.exclude).glob("*.png")}
        if not left_out:
            raise UsageError(f"{ts.name} leaves out the {ts.exclude} test images, and there are "
                             f"none in {root / ts.exclude}", f"put {ts.exclude}/ beside {ts.folder.split('/')[0]}/")
        files = [f for f in files if f.stem not in left_out]
    if not files:
        raise UsageError(f"no {ts.name} images in {folder}",
                         "check --data-dir (expects Set12/, CBSD68/, BSD68/, Urban100/image_SRF_4/, "
                         "BSDS500/data/images/val/)")
    return files


def check_limit(limit: int | None) -> None:
    """``--limit``: None (every image) or a whole number >= 1."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UsageError(f"--limit must be at least 1, not {limit}")


def first_images(files: list[Path], limit: int | None) -> list[Path]:
    """The first ``limit`` of ``files`` (``--limit``; None: all of them)."""
    check_limit(limit)
    return files if limit is None else files[:limit]


def to_gray_paper(img: Image.Image) -> Image.Image:
    """The paper's gray conversion; gray images pass unchanged."""
    if img.mode in ("L", "I;16", "I", "F"):
        return img
    return img.convert("RGB").convert("L", PAPER_GRAY_MATRIX)


#: libpng's ``png_set_rgb_to_gray(png, 1, 0.299, 0.587)`` coefficients in 1/32768 (the
#: doubles pass through png_fixed, which truncates), as OpenCV's ``imread(..., GRAYSCALE)``
#: of a PNG uses them; blue takes the rest.
_LIBPNG_RED, _LIBPNG_GREEN = 9797, 19234


def libpng_rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 -> H x W, bit-exact with ``cv2.imread(png, cv2.IMREAD_GRAYSCALE)``.

    libpng truncates ``(r*R + g*G + b*B) >> 15`` and leaves gray pixels (R = G = B) as
    they are. Checked against OpenCV 5.0 on all 100 Urban100 images (0 pixels differ);
    ``tests/eval/test_testsets.py`` guards it by a digest of OpenCV's output.
    """
    c = rgb.astype(np.int64)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    blue = 32768 - _LIBPNG_RED - _LIBPNG_GREEN
    y = (_LIBPNG_RED * r + _LIBPNG_GREEN * g + blue * b) >> 15
    return np.where((r == g) & (g == b), r, y).astype(np.uint8)


def load_test_image(path: Path, ts: DatasetSpec) -> np.ndarray:
    """A test image as uint8 H x W x C (C = 3 for colour sets, else 1)."""
    try:
        with Image.open(path) as img:
            img.load()
            if ts.gray == "libpng" and img.mode not in ("L", "I;16", "I", "F"):
                return libpng_rgb_to_gray(np.asarray(img.convert("RGB")))[..., None]
            if ts.color:
                return np.asarray(img.convert("RGB"), dtype=np.uint8)
            gray = to_gray_paper(img) if ts.gray == "paper" else img.convert("L")
            return np.asarray(gray, dtype=np.uint8)[..., None]
    except (OSError, ValueError) as err:
        raise ImageReadError(f"cannot read test image {path}: {err}") from None
