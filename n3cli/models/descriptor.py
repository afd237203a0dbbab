"""Self-describing models: what a model does and what it needs (after spandrel).

The descriptor is the whole contract between a model and the engine: the engine, the
tiling, the memory planner, the time estimate and the self-ensemble read these fields
and never the architecture, so a new family is data, not a special case. Geometry and
cost are derived from the architecture (``n3cli.models.arch``); the task fields (sigma,
sigma range) come from training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

PACKINGS = ("gray", "rgb", "y", "bayer")
ALL_ENSEMBLE_OPS = tuple(range(8))  # the dihedral group: flips and 90-degree rotations


@dataclass(frozen=True)
class ModelDescriptor:
    """Task-level contract of a model.

    - ``task``: "denoise" (Gaussian), "raw-denoise" (heteroscedastic Bayer planes), "sr".
    - ``image_channels``: image planes per pass, in and out (1 or 3).
    - ``packing``: how an image becomes those planes: "gray" (one plane; a colour image
      runs per channel), "rgb", "y" (the BT.601 luminance of a colour image, chroma
      upscaled by bicubic), "bayer" (four half-resolution CFA planes).
    - ``conditioning``: names of the maps appended after the image planes, in order
      (``("sigma",)``: the noise std / 255 everywhere, per pixel if given so).
    - ``sigma`` / ``sigma_range``: a fixed-sigma model's sigma; a blind model's range
      (8-bit units).
    - ``scale``: output size / input size (1 for denoisers); ``scales``: every scale a
      multi-scale model offers (``scale`` is the one a loaded instance runs).
    - ``min_size``, ``size_multiple``: in input pixels; smaller inputs are reflect-padded,
      sizes are padded to the multiple.
    - ``halo``: dependency radius in input pixels (exact tiling context);
      ``tile_quantum``: tiles start at multiples of it (the N3 patch grid, input pixels).
    - ``macs_per_pixel``: multiply-adds per input pixel and pass (time estimates);
      ``bytes_per_pixel``: fp32 peak memory per input pixel (tile planning).
    - ``supports_half``: fp16/bf16 allowed for the convolutions.
    - ``ensemble_ops``: the flips/rotations (0-7, see :mod:`n3cli.engine.ensemble`) the
      self-ensemble may use (all 8 for isotropic models; a Bayer model allows fewer).
    """

    task: str = "denoise"
    image_channels: int = 1
    packing: str = "gray"
    conditioning: tuple[str, ...] = ()
    sigma: float | None = None
    sigma_range: tuple[float, float] | None = None
    scale: int = 1
    scales: tuple[int, ...] = ()
    min_size: int = 80
    size_multiple: int = 1
    halo: int = 0
    tile_quantum: int = 1
    macs_per_pixel: float = 0.0
    bytes_per_pixel: int = 2048
    supports_half: bool = True
    ensemble_ops: tuple[int, ...] = ALL_ENSEMBLE_OPS
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def color(self) -> bool:
        return self.image_channels == 3

    @property
    def noise_map(self) -> bool:
        """The model takes a noise-level map (a blind Gaussian denoiser)."""
        return "sigma" in self.conditioning

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("sigma_range", "conditioning", "scales", "ensemble_ops"):
            if d[k] is not None:
                d[k] = list(d[k])
        d["noise_map"] = self.noise_map  # for readers of the JSON (derived)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelDescriptor":
        d = dict(d)
        noise_map = d.pop("noise_map", None)  # files before ``conditioning`` existed
        if noise_map and "conditioning" not in d:
            d["conditioning"] = ("sigma",)
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("sigma_range", "conditioning", "scales", "ensemble_ops"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


#: Fields the architecture determines: always derived by its ``describe``, never taken
#: from a file (a JSON written by an older version may hold an outdated value).
DERIVED_FIELDS = ("image_channels", "packing", "conditioning", "scales", "min_size", "size_multiple",
                  "halo", "tile_quantum", "macs_per_pixel", "bytes_per_pixel", "ensemble_ops")


def task_fields(desc: ModelDescriptor) -> dict[str, Any]:
    """The fields training decided (task, sigma, sigma range, scale, ...): what a
    re-derivation of the descriptor by the architecture must keep."""
    return {k: v for k, v in desc.__dict__.items() if k not in DERIVED_FIELDS}
