"""CI: the README's main job really denoised the bundled example.

Reads ``out/camera_denoised.png`` (the quick start's output), checks it is a same-size
gray 8-bit PNG and that it is closer to the clean crop than the noisy input, by at least
MIN_GAIN dB. The clean crop comes from scikit-image's bundled ``camera()`` exactly as
``examples/make_examples.py`` cuts it (the example itself is checked to be that crop + noise).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

MIN_GAIN = 6.0  # dB; n3net-blind gains ~8 dB on this crop at sigma 25


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


def main() -> int:
    from skimage import data

    root = Path(__file__).resolve().parents[1]
    out_path, noisy_path = root / "out" / "camera_denoised.png", root / "examples" / "camera_s25.png"
    if not out_path.is_file():
        print(f"check_quickstart: {out_path} was not written", file=sys.stderr)
        return 1
    with Image.open(out_path) as img:
        fmt, mode, out = img.format, img.mode, np.asarray(img)
    noisy = np.asarray(Image.open(noisy_path))
    clean = data.camera()[60:220, 180:340]
    problems = []
    if fmt != "PNG" or mode != "L" or out.shape != noisy.shape:
        problems.append(f"expected a {noisy.shape} gray PNG, got {fmt} {mode} {out.shape}")
    before = psnr(noisy, clean)
    if before > 25:  # the example must be the clean crop plus sigma-25 noise (~20.6 dB)
        problems.append(f"examples/camera_s25.png is not the noisy camera crop ({before:.2f} dB)")
    after = psnr(out, clean) if out.shape == clean.shape else float("nan")
    print(f"check_quickstart: PSNR noisy {before:.2f} dB -> denoised {after:.2f} dB")
    if not after >= before + MIN_GAIN:
        problems.append(f"denoised PSNR {after:.2f} dB is not {MIN_GAIN} dB above the input's {before:.2f}")
    for p in problems:
        print(f"check_quickstart: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
