"""CLI test fixtures: a tiny random-weight model instead of installed weights, one torch
thread (``run``, the CliRunner, is in the root conftest; image helpers in ``cli_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture
def tiny(monkeypatch):
    """``n3cli.weights`` answers with the tiny model (no weights on disk)."""
    tiny_models.install(monkeypatch)
    return tiny_models
