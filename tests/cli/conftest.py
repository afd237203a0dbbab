"""CLI test fixtures: one torch thread (``run``, the CliRunner, and ``tiny``, the tiny
random-weight models, are in the root conftest; image helpers in ``cli_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # cli_helpers, tiny_models for the test modules


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield
