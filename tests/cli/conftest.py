"""CLI test fixtures: a tiny random-weight model instead of installed weights, one torch
thread, and a CliRunner (image helpers are in ``cli_helpers``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models  # noqa: E402


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
