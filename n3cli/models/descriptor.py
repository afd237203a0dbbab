"""Self-describing models: what a model does and what it needs (after spandrel).

The engine reads only the descriptor, never the architecture, to decide how to feed a
model: how many image channels, whether a noise-level map is expected, the scale, the
smallest useful input, how far one output pixel depends on the input (for exact tiling).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelDescriptor:
    """Task-level contract of a model.

    - ``task``: "denoise" (Gaussian), "raw-denoise" (heteroscedastic Bayer planes), "sr".
    - ``image_channels``: 1 (gray) or 3 (RGB) planes in and out.
    - ``noise_map``: the model takes one extra input channel filled with sigma/255
      (blind models); fixed-sigma models have ``sigma`` set instead.
    - ``sigma_range``: the sigmas (8-bit units) a blind model was trained on.
    - ``min_size``: inputs smaller than this on a side are reflect-padded first (the N3
      search window needs 80 px to be complete).
    - ``size_multiple``: inputs are padded to a multiple of this.
    - ``halo``: dependency radius in pixels; tiles need this much context for exact output.
    - ``supports_half``: fp16/bf16 allowed for the convolutions.
    """

    task: str = "denoise"
    image_channels: int = 1
    noise_map: bool = False
    sigma: float | None = None
    sigma_range: tuple[float, float] | None = None
    scale: int = 1
    min_size: int = 80
    size_multiple: int = 1
    halo: int = 0
    supports_half: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def color(self) -> bool:
        return self.image_channels == 3

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["sigma_range"] is not None:
            d["sigma_range"] = list(d["sigma_range"])
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelDescriptor":
        d = dict(d)
        if d.get("sigma_range") is not None:
            d["sigma_range"] = tuple(d["sigma_range"])
        return cls(**d)
