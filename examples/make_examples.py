"""Regenerate the example noisy images from scikit-image's bundled sample data.

    python examples/make_examples.py

Crops of ``skimage.data.camera()`` (CC0, Lav Varshney) and ``skimage.data.astronaut()``
(public domain, NASA) with white Gaussian noise (fixed seeds), clipped and quantised
like a real noisy file. The clean crops are not stored; run this to get them (``--clean``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def add_noise(clean: np.ndarray, sigma: float, seed: int, top: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) / top + rng.standard_normal(clean.shape) * sigma / 255.0
    return np.round(np.clip(noisy, 0, 1) * top)


def main() -> None:
    from skimage import data

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clean", action="store_true", help="also write the clean crops (*_clean.png)")
    args = ap.parse_args()
    camera = data.camera()[60:220, 180:340]  # 160 x 160: the photographer
    astronaut = data.astronaut()[40:168, 170:298]  # 128 x 128: the face
    Image.fromarray(add_noise(camera, 25, 0, 255).astype(np.uint8)).save(HERE / "camera_s25.png")
    Image.fromarray(add_noise(astronaut, 25, 1, 255).astype(np.uint8)).save(HERE / "astronaut_s25.png")
    # A 16-bit gray TIFF: the output stays 16-bit.
    import tifffile
    cam16 = camera[40:136, 40:136].astype(np.uint16) * 257
    tifffile.imwrite(HERE / "camera16_s25.tif", add_noise(cam16, 25, 2, 65535).astype(np.uint16),
                     compression="zlib", metadata=None)
    if args.clean:
        Image.fromarray(camera).save(HERE / "camera_clean.png")
        Image.fromarray(astronaut).save(HERE / "astronaut_clean.png")


if __name__ == "__main__":
    main()
