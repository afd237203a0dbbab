"""Shared fixtures.

``shared_dir``: the read-only reference folder ``../shared``; ``shared_file(rel)``: one
file in it. Both skip when it is absent, and fail instead under ``N3_REQUIRE_SHARED=1``
(``.ci/run`` sets it: CI has ../shared, so a moved path must not turn a guard into a skip).
``paper_store``: a session-wide store with the paper's three models imported from
``../shared``; while it is active ``N3_HOME`` points at it, so ``load_model`` finds them.
Every test session also gets its own empty ``N3_HOME`` first, so that no test ever reads
or writes the user's real store.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAPER_OFFICIAL = SHARED / "weights" / "official"


@pytest.fixture(scope="session", autouse=True)
def _isolated_n3_home(tmp_path_factory):
    """Point ``N3_HOME`` at an empty temporary store for the whole session."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("N3_HOME", str(tmp_path_factory.mktemp("n3_home")))
        yield


def missing_shared(what: str) -> None:
    """Reference data is absent: skip, or fail when ``N3_REQUIRE_SHARED=1``."""
    if os.environ.get("N3_REQUIRE_SHARED") == "1":
        pytest.fail(f"{what} not found (N3_REQUIRE_SHARED=1: ../shared is expected here)", pytrace=False)
    pytest.skip(f"{what} not found")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` relative to the repository (see :func:`missing_shared`)."""
    if not SHARED.is_dir():
        missing_shared(f"reference data folder {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def shared_file(shared_dir):
    """``shared_file("datasets/Set12/04.png")`` -> the path, or skip/fail when it is absent."""

    def get(rel: str) -> Path:
        path = shared_dir / rel
        if not path.exists():
            missing_shared(str(path))
        return path

    return get


@pytest.fixture
def shared_missing():
    """:func:`missing_shared` itself, for the test of the switch."""
    return missing_shared


@pytest.fixture(scope="session")
def paper_store(tmp_path_factory, _isolated_n3_home) -> Path:
    """A store holding ``n3net-paper-s{25,50,70}`` (imported from ../shared); sets ``N3_HOME``.

    ``N3_HOME`` keeps pointing here for the rest of the session; tests that need an empty
    store set their own with ``monkeypatch.setenv("N3_HOME", ...)``.
    """
    from n3cli.weights import PAPER_SOURCES, import_checkpoint

    files = {name: PAPER_OFFICIAL / src.relpath for name, src in PAPER_SOURCES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        missing_shared(f"paper weights {missing[0]}")
    store = tmp_path_factory.mktemp("paper_store")
    for name, path in files.items():
        import_checkpoint(path, name, store)
    os.environ["N3_HOME"] = str(store)  # undone by _isolated_n3_home's context at session end
    return store


@pytest.fixture
def randomise_bn():
    """Give every BatchNorm2d trained-looking statistics and affine parameters."""
    import torch
    import torch.nn as nn

    def _randomise(net: nn.Module, seed: int = 0) -> None:
        """Trained-looking running statistics (the fresh ones are 0 / 1: folding would be trivial)."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.BatchNorm2d):
                    # Moderate spreads around the initial values: activations keep their
                    # scale (large ones make the N3 softmax arbitrarily ill-conditioned).
                    m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                    m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.weight.mul_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.add_(torch.randn(m.num_features, generator=g) * 0.01)

    return _randomise


@pytest.fixture
def one_torch_thread():
    """Tiny images gain nothing from threads, and on a shared, busy machine OpenMP
    spin-waiting makes a 24x31 forward pass 100x slower (1.4 s instead of 8 ms)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run():
    """``run(*args)`` -> click Result of ``n3 <args>`` (stderr separate)."""
    from click.testing import CliRunner

    from n3cli.cli.main import cli

    runner = CliRunner()

    def _run(*args, **kw):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=kw.pop("catch", True), **kw)

    return _run


@pytest.fixture
def tiny(monkeypatch):
    """``n3cli.weights`` answers with tiny random-weight models (``tests/cli/tiny_models.py``:
    tiny-s25, tiny-blind-color, tiny-sr), no weights on disk."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "cli"))
    import tiny_models

    tiny_models.install(monkeypatch)
    return tiny_models
