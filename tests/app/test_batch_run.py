"""``run_plan``: every failure stays with its item; the report adds up."""

from __future__ import annotations

from pathlib import Path

import pytest

from n3cli.app.batch import ItemResult, run_plan
from n3cli.errors import ImageReadError
from n3cli.io.batch import Plan, PlanItem


def _plan(n: int) -> Plan:
    return Plan(items=[PlanItem(Path(f"in{i}.png"), Path(f"out{i}.png")) for i in range(n)]
                + [PlanItem(Path("old.png"), Path("old_out.png"), "skip", "exists")])


def test_failures_of_every_kind_stay_per_item():
    def process(item):
        i = int(item.src.stem[2:])
        if i == 1:
            raise ImageReadError(f"{item.src}: empty file (0 bytes)")
        if i == 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if i == 3:
            raise ValueError("something unexpected")
        return ItemResult(str(item.src), str(item.dst), "ok")

    report = run_plan(_plan(5), process)
    assert [r.status for r in report.items] == ["ok", "failed", "failed", "failed", "ok", "skipped"]
    assert report.exit_code == 1
    reasons = [r.reason for r in report.items]
    assert reasons[1] == "in1.png: empty file (0 bytes)"
    assert "out of memory: try a smaller --tile" in reasons[2]
    assert "internal error: ValueError: something unexpected" in reasons[3]
    doc = report.to_dict()
    assert doc["summary"]["succeeded"] == 2 and doc["summary"]["failed"] == 3


def test_debug_reraises_and_interrupt_carries_the_partial_report():
    def boom(item):
        raise ValueError("bug")

    with pytest.raises(ValueError):
        run_plan(_plan(2), boom, debug=True)

    def stop(item):
        if item.src.name == "in1.png":
            raise KeyboardInterrupt
        return ItemResult(str(item.src), str(item.dst), "ok")

    with pytest.raises(KeyboardInterrupt) as info:
        run_plan(_plan(3), stop)
    partial = info.value.report
    assert partial.interrupted and partial.count("ok") == 1
