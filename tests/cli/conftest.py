"""CLI test fixtures: a tiny random-weight model instead of installed weights, and
small image files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402

TINY_SCRIPT = Path(__file__).parent / "tiny_models.py"


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny images gain nothing from threads, and on a shared, busy machine OpenMP
    spin-waiting makes a 24x31 forward pass 100x slower (1.4 s instead of 8 ms)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny(monkeypatch):
    """``n3cli.weights`` answers with the tiny model (no weights on disk)."""
    tiny_models.install(monkeypatch)
    return tiny_models


@pytest.fixture
def run():
    """``run(*args)`` -> click Result of ``n3 <args>`` (stderr separate)."""
    from n3cli.cli.main import cli

    runner = CliRunner()

    def _run(*args, **kw):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=kw.pop("catch", True), **kw)

    return _run


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
