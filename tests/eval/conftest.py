"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def set12(shared_dir):
    root = shared_dir / "datasets"
    if not (root / "Set12" / "04.png").is_file():
        pytest.skip("Set12 not found in ../shared/datasets")
    return root
