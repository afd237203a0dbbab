"""Small image files for CLI tests (a uniquely named module: ``conftest`` is ambiguous)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage

TINY_SCRIPT = Path(__file__).parent / "tiny_models.py"


def save_gray(path: Path, h: int = 24, w: int = 31, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    return path


def save_rgb(path: Path, h: int = 24, w: int = 31, seed: int = 0, **kw) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, **kw)
    return path
