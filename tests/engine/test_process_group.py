"""Leaving a torchrun process group (n3cli.engine.distributed.shutdown)."""

from __future__ import annotations

import torch.distributed as dist

from n3cli.engine import distributed
from n3cli.engine.distributed import DistInfo, shutdown


def _record(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(dist, "is_initialized", lambda: "destroy" not in calls)
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(distributed.gc, "collect", lambda: calls.append("gc") or 0)
    return calls


def test_a_finished_run_frees_its_objects_waits_for_all_ranks_then_leaves(monkeypatch):
    """The order is the fix for ranks aborting at exit: DDP's reducer and gloo's work
    objects are collected while the group exists, the ranks leave together."""
    calls = _record(monkeypatch)
    shutdown(DistInfo(rank=1, world=2), wait_for_all=True)
    assert calls == ["gc", "barrier", "destroy"]
    shutdown(DistInfo(rank=1, world=2), wait_for_all=True)  # already left: nothing more
    assert calls == ["gc", "barrier", "destroy"]


def test_a_failed_run_does_not_wait_for_ranks_that_may_never_come(monkeypatch):
    calls = _record(monkeypatch)
    shutdown(DistInfo(rank=0, world=2))
    assert calls == ["gc", "destroy"]


def test_a_single_process_touches_nothing(monkeypatch):
    calls = _record(monkeypatch)
    shutdown(DistInfo())
    assert calls == []
