"""The "missing ../shared" switch: a skip normally, a failure under N3_REQUIRE_SHARED=1."""

from __future__ import annotations

import pytest


def test_missing_shared_skips_by_default(shared_missing, monkeypatch):
    monkeypatch.delenv("N3_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception):
        shared_missing("datasets/Nowhere/01.png")


def test_missing_shared_fails_when_required(shared_missing, monkeypatch):
    monkeypatch.setenv("N3_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="N3_REQUIRE_SHARED=1"):
        shared_missing("datasets/Nowhere/01.png")
