"""Batch jobs under torchrun: a stable split, one merged report, resume per file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from n3cli.app.distributed import rank_of, share
from n3cli.engine.distributed import DistInfo
from n3cli.io.batch import Plan, PlanItem

REPO = Path(__file__).resolve().parents[2]


def test_rank_of_is_stable_and_covers_every_rank():
    keys = [f"photos/{i:05d}.jpg" for i in range(4000)]
    owners = [rank_of(k, 4) for k in keys]
    assert owners == [rank_of(k, 4) for k in keys]  # same answer every time (no salted hash())
    counts = np.bincount(owners, minlength=4)
    assert counts.min() > 900 and counts.max() < 1100  # even enough for large batches
    # Pinned: the rule must not change between releases, or reruns would reshuffle work.
    assert [rank_of(k, 3) for k in ("a.png", "b.png", "c.png", "sub/d.png")] == \
        [int.from_bytes(__import__("hashlib").sha256(k.encode()).digest()[:8], "big") % 3
         for k in ("a.png", "b.png", "c.png", "sub/d.png")]


def test_share_partitions_the_plan():
    plan = Plan(items=[PlanItem(Path(f"in/{i}.png"), Path(f"out/{i}.png")) for i in range(50)],
                ignored=[(Path("in/notes.txt"), "not an image")])
    shares = [share(plan, DistInfo(rank=r, world=3)) for r in range(3)]
    seen = [str(i.src) for s in shares for i in s.items]
    assert sorted(seen) == sorted(str(i.src) for i in plan.items) and len(seen) == len(set(seen))
    assert shares[0].ignored == plan.ignored and not shares[1].ignored and not shares[2].ignored
    assert share(plan, DistInfo()) is plan


def _folder(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    names = ["a.png", "b.png", "c.png", "sub/d.png", "sub/e.png", "sub/deeper/f.png"]
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(rng.integers(0, 256, (40, 50), dtype=np.uint8)).save(root / name)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return names


def _torchrun(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "n3cli", "denoise", "in", "-o", "out", "-r", "--sigma", "25", "--model", "n3net-blind",
           *extra]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_two_processes_split_merge_and_resume(tmp_path):
    names = _folder(tmp_path / "in")
    inputs = [f"in/{n}" for n in names] + ["in/broken.png"]
    assert {rank_of(k, 2) for k in inputs} == {0, 1}  # both ranks have work

    first = _torchrun(tmp_path, "--json")
    assert first.returncode == 1, first.stderr[-3000:]  # the broken file, reported by rank 0
    doc = json.loads(first.stdout)  # one JSON document: only rank 0 writes stdout
    assert doc["summary"] == {"succeeded": 6, "skipped": 0, "failed": 1, "ignored": 0, "interrupted": False}
    by_input = {i["input"]: i for i in doc["items"]}
    assert sorted(by_input) == sorted(inputs)
    for key, item in by_input.items():
        assert item["rank"] == rank_of(key, 2)  # each file went to exactly its rank
    assert by_input["in/broken.png"]["status"] == "failed" and "broken.png" in by_input["in/broken.png"]["reason"]
    for n in names:
        out = tmp_path / "out" / n.replace(".png", "_denoised.png")
        assert PILImage.open(out).size == (50, 40)
    assert not list((tmp_path / "out").rglob("*.tmp"))  # atomic writes: no debris

    # Rerun: everything done is skipped; a lost output (a rank died on it) is redone.
    (tmp_path / "out" / "sub" / "d_denoised.png").unlink()
    second = _torchrun(tmp_path)
    assert second.returncode == 1
    assert "n3: 1 succeeded, 5 skipped, 1 failed" in second.stderr
    assert (tmp_path / "out" / "sub" / "d_denoised.png").is_file()
    assert second.stderr.count("summary") == 1  # one merged summary, from rank 0
