"""The super-resolution evaluation protocol (spec section 6) and its test sets.

Per image: the HR image (RGB, 8-bit) is cropped to a multiple of the scale; the LR image
is MATLAB ``imresize(HR, 1/scale)`` (bicubic, antialiased; ``bicubic-pytorch``) rounded to
8 bits; the method upscales it back to RGB; the output is rounded to 8 bits; PSNR and SSIM
are measured on the BT.601 luminance (Y, 0-255 scale) after shaving ``scale`` pixels from
every border. The bicubic row reproduces the paper's Set5 33.68 / 30.41 / 28.43 dB
(x2 / x3 / x4) to 0.01 dB (``tests/eval/test_sr_protocol.py`` guards it).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from n3cli.data.colorspace import rgb_to_y
from n3cli.data.testsets import default_data_dir, first_images
from n3cli.engine.resample import bicubic_resize
from n3cli.errors import ImageReadError, UsageError
from n3cli.models import ModelSpec

#: Test set -> (folder under the data root, file pattern). B100 is BSDS500 ``val``.
SR_DATASETS: dict[str, tuple[str, str]] = {
    "set5": ("Set5/HR", "*.png"),
    "urban100": ("Urban100/image_SRF_4", "*_HR.png"),
    "b100": ("BSDS500/data/images/val", "*.jpg"),
}
SR_SCALES = (2, 3, 4)

#: Published Set5 / Urban100 / B100 Y-PSNR (dB) to compare against, by method and scale.
#: Paper Table 5 (N3Net, VDSR, bicubic on Set5) and FSRCNN as published (Dong et al. 2016).
SR_REFERENCES: dict[str, dict[int, float]] = {
    "bicubic": {2: 33.68, 3: 30.41, 4: 28.43},
    "FSRCNN": {2: 37.00, 3: 33.16, 4: 30.71},
    "VDSR": {2: 37.53, 3: 33.66, 4: 31.35},
    "N3Net (paper)": {2: 37.57, 3: 33.84, 4: 31.50},
}

#: RGB float [0, 1] LR image (h x w x 3), scale -> RGB float HR image (s*h x s*w x 3).
Upscale = Callable[[np.ndarray, int], np.ndarray]


def model_upscaler(model: torch.nn.Module, spec: ModelSpec, device: torch.device, ensemble: int = 1,
                   precision: str = "fp32") -> Upscale:
    """A loaded SR model (at one scale) as the protocol's upscale function: whole image,
    prepared once, its convolutions in ``precision`` (fp32, fp16, bf16)."""
    from n3cli.engine import restore_image
    from n3cli.engine.optimize import inference_model
    from n3cli.engine.precision import resolve_precision

    if spec.descriptor.task != "sr":
        raise UsageError(f"'{spec.name}' is a {spec.descriptor.task} model",
                         "--task sr needs an SR model or bicubic")
    prepared = inference_model(model, device, resolve_precision(precision, device, spec.descriptor))

    def upscale(lr: np.ndarray, scale: int) -> np.ndarray:
        return restore_image(prepared, spec.descriptor, lr, None, device, tile=0, ensemble=ensemble,
                             precision=precision, prepared=True)

    return upscale


@dataclass
class SRImageScore:
    name: str
    psnr: float
    ssim: float
    seconds: float


@dataclass
class SREvalResult:
    dataset: str
    scale: int
    method: str
    mean_psnr: float
    mean_ssim: float
    seconds: float
    images: list[SRImageScore] = field(default_factory=list)
    protocol: str = "y-shave"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_sr_images(dataset: str, data_dir: Path | None = None) -> list[Path]:
    """The set's HR files in sorted name order (usage error if none)."""
    if dataset not in SR_DATASETS:
        raise UsageError(f"unknown SR dataset '{dataset}'", f"use one of {', '.join(SR_DATASETS)}")
    folder, pattern = SR_DATASETS[dataset]
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    files = sorted((root / folder).glob(pattern), key=lambda p: p.name)
    if not files:
        raise UsageError(f"no {dataset} images in {root / folder}",
                         "check --data-dir (expects Set5/HR/, Urban100/image_SRF_4/, BSDS500/data/images/val/)")
    return files


def _read_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as err:
        raise ImageReadError(f"cannot read test image {path}: {err}") from None


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline (an :data:`Upscale`)."""
    return bicubic_resize(lr, lr.shape[0] * scale, lr.shape[1] * scale)


# The low-resolution input needs a few pixels, and the score shaves ``scale`` pixels per
# side before an 11x11 SSIM window: below this many LR pixels a side there is no score.
MIN_SIDE = 8


def make_lr(hr_u8: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(mod-cropped HR uint8, LR float in [0, 1] rounded to 8 bits) of the protocol."""
    h, w = hr_u8.shape[:2]
    hr = hr_u8[:h - h % scale, :w - w % scale]
    lr = bicubic_resize(hr.astype(np.float32) / 255.0, hr.shape[0] // scale, hr.shape[1] // scale)
    return hr, np.round(np.clip(lr, 0.0, 1.0) * 255.0) / 255.0


def score_y(hr_u8: np.ndarray, out: np.ndarray, scale: int) -> tuple[float, float]:
    """(PSNR, SSIM) on Y after rounding ``out`` (float RGB) to 8 bits and shaving ``scale``."""
    from n3cli.eval.metrics import psnr, ssim

    out_u8 = np.round(np.clip(out, 0.0, 1.0) * 255.0)
    y_ref = rgb_to_y(hr_u8 / 255.0)[scale:-scale, scale:-scale]
    y_out = rgb_to_y(out_u8 / 255.0)[scale:-scale, scale:-scale]
    return psnr(y_ref, y_out), ssim(y_ref, y_out, padding="valid")


def sr_evaluate(upscale: Upscale, method: str, dataset: str, scale: int, data_dir: Path | None = None,
                limit: int | None = None,
                progress: Callable[[str, int, int, str], None] | None = None) -> SREvalResult:
    """Score ``upscale`` on one SR test set at one scale with the protocol above."""
    if scale not in SR_SCALES:
        raise UsageError(f"--scale {scale} is not one of {', '.join(map(str, SR_SCALES))}")
    files = first_images(list_sr_images(dataset, data_dir), limit)
    scores: list[SRImageScore] = []
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        hr_u8 = _read_rgb(path)
        if min(hr_u8.shape[:2]) < MIN_SIDE * scale:
            raise UsageError(f"test image {path} is {hr_u8.shape[1]}x{hr_u8.shape[0]}: too small to score at "
                             f"x{scale} (each side needs {MIN_SIDE * scale} px)", "remove it from the test set")
        hr, lr = make_lr(hr_u8, scale)
        t1 = time.perf_counter()
        out = upscale(lr, scale)
        if out.shape != hr.shape:
            raise ValueError(f"{method} returned {out.shape} for a {hr.shape} target")
        p, s = score_y(hr, out, scale)
        scores.append(SRImageScore(path.stem, p, s, time.perf_counter() - t1))
        if progress is not None:
            progress(dataset, i + 1, len(files), path.stem)
    return SREvalResult(dataset=dataset, scale=scale, method=method,
                        mean_psnr=float(np.mean([s.psnr for s in scores])),
                        mean_ssim=float(np.mean([s.ssim for s in scores])),
                        seconds=time.perf_counter() - t0, images=scores)


def sr_evaluate_many(upscale: Upscale, method: str, datasets: Sequence[str], scales: Sequence[int],
                     data_dir: Path | None = None, limit: int | None = None,
                     progress: Callable[[str, int, int, str], None] | None = None) -> list[SREvalResult]:
    """Every (dataset, scale) pair; all sets are found before any work starts."""
    for name in datasets:
        list_sr_images(name, data_dir)
    return [sr_evaluate(upscale, method, d, s, data_dir, limit, progress) for d in datasets for s in scales]
