"""Option values the commands share, kept free of heavy imports so that ``n3 --help``
never loads torch (tests check they match the engine's own lists)."""

from __future__ import annotations

#: n3cli.engine.runner.GRAY_ON_COLOR_STRATEGIES, for ``--gray-on-color``.
GRAY_ON_COLOR_CHOICES = ("rgb", "opponent")

#: n3cli.engine.precision.PRECISIONS, for ``--precision`` (denoise, upscale, eval).
PRECISION_CHOICES = ("fp32", "fp16", "bf16")

#: n3cli.eval.sr.SR_DATASETS and SR_SCALES, for ``n3 eval --task sr``.
SR_DATASET_CHOICES = ("set5", "urban100", "b100")
SR_SCALE_CHOICES = (2, 3, 4)
