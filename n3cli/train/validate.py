"""Periodic validation PSNR during training: monitoring only.

The validation images are a folder (``validation.folder``; Set12 in the GPU recipes, a
*test* set), a named validation set (``validation.dataset``: val32 / cval32 in the CPU
recipes) or images held out of training (``data.holdout``). Their PSNR is shown and logged
to follow training, never used to stop early; the bundled models are chosen afterwards
with ``n3 eval --dataset val32``. The
noise is the same at every evaluation (fixed seed, drawn on the CPU) so numbers are
comparable along a run and across devices.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from n3cli.train.tasks import Task

VAL_SEED = 1234


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    """10 log10(1 / (MSE + 1e-10)) on the unclipped float output (the paper's measure)."""
    mse = torch.mean((output.double() - target.double()) ** 2).item()
    return 10.0 * math.log10(1.0 / (mse + 1e-10))


class Validator:
    """Degraded inputs prepared once; :meth:`run` returns {level: mean PSNR} and the overall
    mean (levels are the config's ``validation.sigmas``: sigmas, or scales for SR).

    ``images``: how many of the given images are used (those smaller than ``min_size`` on a
    side are skipped), the count a model card states."""

    def __init__(self, images: list[tuple[str, np.ndarray]], sigmas: tuple[float, ...], task: Task,
                 min_size: int):
        self.task = task
        self.cases: list[tuple[float, torch.Tensor, torch.Tensor]] = []
        kept = [img for _, img in images if min(img.shape[:2]) >= min_size]  # skip rather than pad
        self.images = len(kept)
        gen = torch.Generator().manual_seed(VAL_SEED)
        for sigma in sigmas:
            for img in kept:
                clean = torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 255.0
                self.cases.append((float(sigma), *task.make_case(clean, sigma, gen)))

    def __len__(self) -> int:
        return len(self.cases)

    @torch.no_grad()
    def run(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        was_training = model.training
        model.eval()
        per_sigma: dict[float, list[float]] = {}
        try:
            for sigma, inp, clean in self.cases:
                out = self.task.run(model, inp.to(device), sigma).float().cpu()
                per_sigma.setdefault(sigma, []).append(psnr(out, clean))
        finally:
            model.train(was_training)
        result = {f"s{s:g}": float(np.mean(v)) for s, v in per_sigma.items()}
        if per_sigma:
            result["mean"] = float(np.mean([np.mean(v) for v in per_sigma.values()]))
        return result
