"""Helpers for scripts/gpu_train.sh: read probe throughput, size runs to a time budget.

    python scripts/gpu_plan.py rate RUN_DIR             -> steady steps/s of a probe run
    python scripts/gpu_plan.py steps RUN_DIR SECONDS    -> "steps bn_steps" that fit
    python scripts/gpu_plan.py summary RUN_DIR          -> one line: steps, rate, loss, PSNR
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def records(run_dir: str) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def steady_rate(run_dir: str) -> float:
    """Median samples/s over the logged intervals, the first (warm-up) left out."""
    rates = [r["samples_per_s"] for r in records(run_dir) if "loss" in r and r.get("samples_per_s")]
    rates = rates[1:] or rates
    if rates:
        return statistics.median(rates)
    # No logged interval: fall back to steps over the time spent training.
    recs = records(run_dir)
    start = next((r for r in recs if r.get("event") == "start"), {})
    end = next((r for r in reversed(recs) if r.get("event") == "end"), {})
    busy = end.get("elapsed_s", 0) - start.get("ready_s", 0)
    return end.get("step", 0) * batch_size(run_dir) / busy if busy > 0 else 0.0


def plan(rate_samples: float, seconds: float, batch: int) -> tuple[int, int]:
    """Gradient steps and lr-0 BatchNorm steps (forward only, ~1/3 of a step) for a budget."""
    steps_per_s = rate_samples / batch
    total = 0.93 * steps_per_s * seconds  # margin for validation and rate noise
    bn = int(min(200, max(2, total // 25)))
    steps = int(max(2, total - bn / 3))
    return steps, bn


def batch_size(run_dir: str) -> int:
    start = next((r for r in records(run_dir) if r.get("event") in ("start", "resume")), {})
    return int(start.get("batch", 32))


def summary(run_dir: str) -> str:
    recs = records(run_dir)
    batch = batch_size(run_dir)
    end = next((r for r in reversed(recs) if r.get("event") == "end"), {})
    losses = [r for r in recs if "loss" in r]
    loss = losses[-1]["loss"] if losses else float("nan")
    val = end.get("val_psnr") or {}
    rate = end.get("samples_per_s") or 0.0
    steps = end.get("step", 0)
    return (f"{Path(run_dir).name}: step {steps}, stopped '{end.get('stopped', '?')}', "
            f"{rate / batch:.2f} steps/s ({rate:.1f} samples/s), final loss {loss:.4f}, "
            f"val PSNR " + (", ".join(f"{k} {v:.2f}" for k, v in val.items()) or "n/a")
            + f", {end.get('elapsed_s', 0):.0f} s")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "rate":
        print(f"{steady_rate(sys.argv[2]):.3f}")
    elif cmd == "steps":
        s, b = plan(steady_rate(sys.argv[2]), float(sys.argv[3]), batch_size(sys.argv[2]))
        print(s, b)
    elif cmd == "summary":
        print(summary(sys.argv[2]))
    else:
        sys.exit(f"unknown command {cmd}")
