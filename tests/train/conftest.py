"""Fixtures for the training tests (helpers live in train_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from train_helpers import make_images  # noqa: E402


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("data") / "train", count=6)


@pytest.fixture(scope="session")
def val_dir(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("valdata") / "monitor", count=1, size=(80, 80), seed=9)
