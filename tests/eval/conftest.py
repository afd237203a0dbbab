"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def set12(shared_file):
    shared_file("datasets/Set12/04.png")
    return shared_file("datasets")
