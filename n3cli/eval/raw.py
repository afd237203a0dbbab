"""The raw (Poisson-Gaussian) evaluation protocol: ``n3 eval --task raw``.

Per test image (Set12 or BSD68, gray, the paper's conversion) and per noise pair (a, b)
of :data:`RAW_GRID` (or one pair given): the clean image x in [0, 1] (no tone mapping
unless asked: then the spec section 5 curve ``x^g * s`` with g, s drawn from the seed),
``noisy = clip(x + N(0, 1) * sqrt(a*x + b), 0, 1)`` drawn in float64 from a seed fixed
per (image, pair), the method's output clipped to [0, 1] (a raw file holds nothing
outside it), PSNR on [0, 1]. The same noise for every method, so rows compare.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from n3cli.data.pg_noise import LOG10_B_OFFSET, add_pg_noise, sample_tone_params
from n3cli.data.testsets import dataset_spec, first_images, list_images, load_test_image
from n3cli.errors import UsageError
from n3cli.eval.metrics import psnr
from n3cli.models import ModelSpec

RAW_DATASETS = ("set12", "bsd68")
RAW_SEED = 2018


def _pair(log10_a: float, b_offset: float = LOG10_B_OFFSET) -> tuple[float, float]:
    return 10.0 ** log10_a, 10.0 ** (log10_a + b_offset)


#: The fixed grid: log10 a = -4, -3, -2, -1 (the paper's range, ends included) with b at the
#: centre of its range (log10 b = log10 a - 2.3), and at log10 a = -2.5 the two ends of the b
#: range (log10 b = log10 a - 2.3 -/+ 1.3: little and much read noise).
RAW_GRID: tuple[tuple[float, float], ...] = (
    _pair(-4.0), _pair(-3.0), _pair(-2.0), _pair(-1.0),
    _pair(-2.5, LOG10_B_OFFSET - 1.3), _pair(-2.5, LOG10_B_OFFSET + 1.3),
)

#: (H x W x 1 noisy plane in [0, 1], a, b) -> denoised plane (same shape).
RawDenoise = Callable[[np.ndarray, float, float], np.ndarray]


def model_raw_denoiser(model: torch.nn.Module, spec: ModelSpec, device: torch.device, ensemble: int = 1,
                       precision: str = "fp32") -> RawDenoise:
    """A loaded raw model, or a blind gray denoiser, as the protocol's function: one plane
    and its (a, b) in, conditioned as its descriptor asks (a and b maps, or the sigma map
    of :func:`n3cli.engine.runner.pg_conditions`); prepared once, whole image, its
    convolutions in ``precision`` (fp32, fp16, bf16)."""
    from n3cli.engine import restore_image
    from n3cli.engine.optimize import inference_model
    from n3cli.engine.precision import resolve_precision
    from n3cli.engine.runner import pg_conditions

    d = spec.descriptor
    if d.task not in ("raw-denoise", "denoise") or d.image_channels != 1 or not set(d.conditioning) & {"a", "sigma"}:
        raise UsageError(f"'{spec.name}' cannot be told Poisson-Gaussian noise",
                         "--task raw needs a raw model or a blind gray denoiser (e.g. n3net-blind)")
    prepared = inference_model(model, device, resolve_precision(precision, device, d))

    def denoise(noisy: np.ndarray, a: float, b: float) -> np.ndarray:
        cond = pg_conditions(d.conditioning, noisy, [(a, b)] * noisy.shape[2])
        return restore_image(prepared, d, noisy, cond, device, tile=0, ensemble=ensemble,
                             precision=precision, prepared=True)

    return denoise


@dataclass
class RawPairScore:
    a: float
    b: float
    mean_psnr: float
    noisy_psnr: float
    psnr: list[float] = field(default_factory=list)  # per image, in file order


@dataclass
class RawEvalResult:
    dataset: str
    method: str
    pairs: list[RawPairScore]
    images: list[str]
    seconds: float
    tone: bool = False
    seed: int = RAW_SEED
    protocol: str = "pg-clipped"

    @property
    def mean_psnr(self) -> float:
        """The mean over the grid (what the targets compare)."""
        return float(np.mean([p.mean_psnr for p in self.pairs]))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "mean_psnr": self.mean_psnr}


def raw_case(clean: np.ndarray, a: float, b: float, seed: Sequence[int], tone: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
    """(target, noisy) float32 H x W x 1 for one image and noise pair, reproducibly."""
    rng = np.random.default_rng(list(seed))
    x = clean.astype(np.float64)
    if tone:
        g, s = sample_tone_params(rng)
        x = x ** g * s
    return x.astype(np.float32), add_pg_noise(x, a, b, rng).astype(np.float32)


def raw_evaluate(denoise: RawDenoise, method: str, dataset: str, grid: Sequence[tuple[float, float]] = RAW_GRID,
                 data_dir: Path | None = None, limit: int | None = None, tone: bool = False,
                 seed: int = RAW_SEED,
                 progress: Callable[[str, int, int, str], None] | None = None,
                 only: Sequence[int] | None = None) -> RawEvalResult:
    """Score ``denoise`` on a gray test set over ``grid`` with the protocol above.

    ``only``: score just these image indices (of the full, limited list), each with the
    noise it has in a full run, so that parts run in parallel add up to one run."""
    if dataset not in RAW_DATASETS:
        raise UsageError(f"--task raw evaluates on {' or '.join(RAW_DATASETS)}, not {dataset}")
    ts = dataset_spec(dataset)
    files = first_images(list_images(ts, data_dir), limit)
    chosen = range(len(files)) if only is None else sorted(set(only))
    t0 = time.perf_counter()
    pairs = [RawPairScore(float(a), float(b), 0.0, 0.0) for a, b in grid]
    noisy_scores: list[list[float]] = [[] for _ in grid]
    total = len(chosen) * len(grid)
    for n, i in enumerate(chosen):
        path = files[i]
        clean = load_test_image(path, ts).astype(np.float32) / 255.0
        for j, (a, b) in enumerate(grid):
            target, noisy = raw_case(clean, a, b, (seed, i, j), tone)
            out = np.clip(denoise(noisy, a, b), 0.0, 1.0)
            if out.shape != target.shape:
                raise ValueError(f"{method} returned {out.shape} for a {target.shape} image")
            pairs[j].psnr.append(psnr(target, out))
            noisy_scores[j].append(psnr(target, noisy))
            if progress is not None:
                progress(dataset, n * len(grid) + j + 1, total, path.stem)
    for p, noisy in zip(pairs, noisy_scores):
        p.mean_psnr, p.noisy_psnr = float(np.mean(p.psnr)), float(np.mean(noisy))
    return RawEvalResult(dataset=dataset, method=method, pairs=pairs, images=[files[i].stem for i in chosen],
                         seconds=time.perf_counter() - t0, tone=tone, seed=seed)
