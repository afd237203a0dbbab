"""The evaluation protocols: the paper's (spec section 3), the real-file one, and KAIR/DnCNN's.

paper: ``torch.manual_seed(1234)`` once, one noise stream through the sets in order,
unclipped float noise and output, PSNR ``10 log10(1/(MSE+1e-10))``, zero-padded SSIM.
real: the paper's noise stream, but the noisy image is clipped to [0, 1] and rounded to
8 bits, as in any noisy PNG or JPEG a user has, and so is the output (what an 8-bit file
written by ``n3 denoise`` holds); PSNR and SSIM as in the paper protocol.
kair: DnCNN's gray BSD68 PNGs, ``np.random.seed(0)`` before each image, output clipped
and rounded to 8 bits, PSNR/SSIM on the 0..255 scale (SSIM over the valid region).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from n3cli.data.degrade import to_8bit
from n3cli.data.testsets import PROTOCOLS, dataset_spec, first_images, list_images, load_test_image
from n3cli.engine import resolve_device, restore_image, sigma_conditions
from n3cli.engine.optimize import inference_model
from n3cli.engine.precision import resolve_precision
from n3cli.errors import UsageError
from n3cli.eval.metrics import psnr, ssim
from n3cli.models import ModelSpec
from n3cli.engine.runner import DEFAULT_GRAY_ON_COLOR

PAPER_SEED = 1234
KAIR_SEED = 0

#: ``progress(done, total, image_name)`` after each image.
Progress = Callable[[int, int, str], None]


@dataclass
class ImageScore:
    name: str
    psnr: float
    ssim: float
    seconds: float


@dataclass
class EvalResult:
    """Scores of one model on one test set at one noise level."""

    dataset: str
    sigma: float
    model: str
    protocol: str
    mean_psnr: float
    mean_ssim: float
    seconds: float
    images: list[ImageScore] = field(default_factory=list)
    ensemble: int = 1  # geometric self-ensemble size (1: the plain model)
    precision: str = "fp32"  # of the convolutions (the N3 kernels always compute in float32)
    model_sigma: float | None = None  # the sigma a fixed-sigma model was trained for
    seed: int | None = None  # of the noise: PAPER_SEED (paper, real) or KAIR_SEED (kair)
    gray_on_color: str | None = None  # how a gray model ran on a colour set (None: not the case)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Denoise = Callable[[np.ndarray], np.ndarray]  # H x W x C float in [0, 1] -> same shape


def paper_noisy(clean_u8: np.ndarray, sigma: float, gen: torch.Generator, real: bool = False) -> np.ndarray:
    """The next noisy image of the paper's stream (H x W x C float), 8-bit if ``real``.

    Noise is drawn in the tensor layout (1, C, H, W), as upstream drew it.
    """
    clean = torch.from_numpy(clean_u8.transpose(2, 0, 1).copy())[None].float() / 255.0
    noisy = clean + torch.randn(clean.shape, generator=gen) * (sigma / 255.0)
    noisy_hwc = noisy[0].numpy().transpose(1, 2, 0)
    return to_8bit(noisy_hwc) if real else noisy_hwc


def _score_paper(denoise: Denoise, clean_u8: np.ndarray, sigma: float,
                 gen: torch.Generator, real: bool = False) -> tuple[float, float]:
    clean = torch.from_numpy(clean_u8.transpose(2, 0, 1).copy())[None].float() / 255.0
    out = denoise(paper_noisy(clean_u8, sigma, gen, real))
    if real:
        out = to_8bit(out)
    ref = clean[0].numpy().transpose(1, 2, 0)
    return psnr(ref, out), ssim(ref, out, data_range=1.0, padding="zero")


def _score_kair(denoise: Denoise, clean_u8: np.ndarray, sigma: float) -> tuple[float, float]:
    np.random.seed(KAIR_SEED)
    noisy = clean_u8.astype(np.float32) / 255.0
    noisy += np.random.normal(0, sigma / 255.0, noisy.shape)
    out = denoise(noisy)
    out_u8 = np.round(np.clip(out, 0.0, 1.0) * 255.0)
    ref = clean_u8.astype(np.float64)
    return psnr(ref, out_u8, peak=255.0), ssim(ref, out_u8, data_range=255.0, padding="valid")


def evaluate_many(model: nn.Module, spec: ModelSpec, datasets: Sequence[str], sigma: float,
                  protocol: str = "paper", data_dir: Path | None = None, limit: int | None = None,
                  device: str | torch.device = "cpu", gray_on_color: str = DEFAULT_GRAY_ON_COLOR,
                  progress: Callable[[str, int, int, str], None] | None = None,
                  ensemble: int = 1, precision: str = "fp32") -> list[EvalResult]:
    """Evaluate on several sets; under the paper protocol one noise stream runs through all.

    ``limit`` keeps the first N images of each set. ``progress(dataset, done, total, name)``
    is called after each image. On Ctrl-C the KeyboardInterrupt carries ``partial``: the
    results of the sets and images that finished. ``ensemble`` > 1 scores the geometric self-ensemble of
    that many flips/rotations (:mod:`n3cli.engine.ensemble`) instead of the plain model.
    ``precision``: of the convolutions (fp32, fp16, bf16), as ``n3 denoise --precision``.
    """
    if protocol not in PROTOCOLS:
        raise UsageError(f"unknown protocol '{protocol}'", f"use one of {', '.join(PROTOCOLS)}")
    if sigma is None or sigma < 0:
        raise UsageError("a noise level is needed", "pass --sigma S (8-bit units, e.g. 25)")
    dev = resolve_device(device) if isinstance(device, str) else device
    dtype = resolve_precision(precision, dev, spec.descriptor)
    model = inference_model(model, dev, dtype)  # eval-mode copy, BatchNorm folded, device layout

    def denoise(noisy: np.ndarray) -> np.ndarray:
        return restore_image(model, spec.descriptor, noisy, sigma_conditions(float(sigma)), dev, tile=0,
                             gray_on_color=gray_on_color, ensemble=ensemble, precision=precision,
                             prepared=True)

    gen = torch.Generator().manual_seed(PAPER_SEED)  # same stream as torch.manual_seed on CPU
    # Resolve every set first so that a missing folder fails before hours of work.
    plans = []
    for name in datasets:
        ts = dataset_spec(name, protocol)
        plans.append((ts, first_images(list_images(ts, data_dir), limit)))
    results = []

    def result(ts, scores: list[ImageScore], t0: float) -> EvalResult:
        return EvalResult(
            dataset=ts.name, sigma=float(sigma), model=spec.name, protocol=protocol,
            mean_psnr=float(np.mean([s.psnr for s in scores])) if scores else float("nan"),
            mean_ssim=float(np.mean([s.ssim for s in scores])) if scores else float("nan"),
            seconds=time.perf_counter() - t0, images=scores, ensemble=ensemble,
            precision=precision, model_sigma=spec.descriptor.sigma,
            seed=KAIR_SEED if protocol == "kair" else PAPER_SEED,
            gray_on_color=gray_on_color if ts.color and spec.descriptor.image_channels == 1 else None)

    for ts, files in plans:
        scores: list[ImageScore] = []
        t0 = time.perf_counter()
        try:
            for i, path in enumerate(files):
                clean = load_test_image(path, ts)
                t1 = time.perf_counter()
                if protocol in ("paper", "real"):
                    p, s = _score_paper(denoise, clean, float(sigma), gen, real=protocol == "real")
                else:
                    p, s = _score_kair(denoise, clean, float(sigma))
                scores.append(ImageScore(path.stem, p, s, time.perf_counter() - t1))
                if progress is not None:
                    progress(ts.name, i + 1, len(files), path.stem)
        except KeyboardInterrupt as err:  # Ctrl-C: the caller can still report what finished
            err.partial = results + [result(ts, scores, t0)]  # type: ignore[attr-defined]
            raise
        results.append(result(ts, scores, t0))
    return results


def evaluate(model: nn.Module, spec: ModelSpec, dataset: str, sigma: float, protocol: str = "paper",
             data_dir: Path | None = None, limit: int | None = None,
             device: str | torch.device = "cpu", gray_on_color: str = DEFAULT_GRAY_ON_COLOR,
             progress: Progress | None = None, ensemble: int = 1, precision: str = "fp32") -> EvalResult:
    """Evaluate ``model`` on one test set; the paper's seed starts this set's noise stream."""
    cb = None if progress is None else (lambda _ds, done, total, name: progress(done, total, name))
    return evaluate_many(model, spec, [dataset], sigma, protocol, data_dir, limit, device,
                         gray_on_color, cb, ensemble, precision)[0]
