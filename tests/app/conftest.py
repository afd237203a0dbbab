"""Application-layer tests run small images: one torch thread (see the root conftest)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield
