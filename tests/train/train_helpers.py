"""Helpers for the training tests: tiny synthetic image folders and tiny configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def make_images(folder: Path, count: int = 6, size: tuple[int, int] = (64, 72), color: bool = False,
                seed: int = 0) -> Path:
    """Smooth random images (gradients + blobs) so that denoising has structure to learn."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    for i in range(count):
        planes = []
        for _ in range(3 if color else 1):
            a, b, c = rng.uniform(-1, 1, 3)
            p = 0.5 + 0.3 * (a * yy + b * xx) + 0.2 * np.sin(6 * c * xx + 4 * yy)
            for _ in range(3):
                cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
                p = p + 0.3 * ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)
            planes.append(np.clip(p, 0, 1))
        arr = (np.stack(planes, -1) * 255).round().astype(np.uint8)
        Image.fromarray(arr[..., 0] if not color else arr).save(folder / f"img{i:02d}.png")
    return folder


TINY = """
name = "{name}"
seed = 5
[model]
image_channels = {ic}
in_channels = {inc}
out_channels = {ic}
features = 8
depth = 3
embed_features = 8
k = 2
[task]
kind = "{task}"
sigma = 25
sigma_range = [5.0, 50.0]
[data]
train = ["{train}"]
color = "{color}"
crop = 40
augment = "dihedral"
sweeps = 2
[validation]
folder = "{val}"
images = 1
sigmas = [25]
every_steps = 0
[optim]
batch_size = 4
lr = 1e-3
[schedule]
kind = "exp"
steps = {steps}
bn_steps = {bn}
bn_reset = true
[checkpoint]
every_steps = 0
every_minutes = 0
[runtime]
log_every = {log_every}
"""


def write_config(path: Path, train: Path, val: Path | str = "", name: str = "tiny", task: str = "gauss",
                 color: bool = False, steps: int = 6, bn: int = 2, log_every: int = 2) -> Path:
    ic = 3 if color else 1
    inc = ic + (1 if task == "blind-gauss" else 0)
    path.write_text(TINY.format(name=name, ic=ic, inc=inc, task=task, train=train.as_posix(),
                                color="rgb" if color else "gray", val=str(val), steps=steps, bn=bn,
                                log_every=log_every))
    return path


