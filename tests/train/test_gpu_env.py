"""`n3 train` must run on a bare GPU machine: no platformdirs, pooch, rawpy or pypng.

The GPU machine the bundled models are trained on lacks these packages, so the training
import chain, the export included, must not need them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from import_blocker import blocked_run_code
from train_helpers import REPO, write_config

BLOCKED = "platformdirs,pooch,rawpy,png,skimage,bm3d,cv2"
BLOCKER = blocked_run_code("n3cli.cli.train_cmd", "n3 train")


def test_train_without_optional_packages(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, task="blind-gauss", steps=2, bn=0)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", BLOCKER, BLOCKED, "--config", str(cfg), "--out",
                           str(tmp_path / "o"), "--device", "cpu", "-q"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads((tmp_path / "o" / "tiny.json").read_text())
    # Same layout as the weights store writes (read back by the store's own parser).
    from n3cli.weights.store import read_entry, sha256_file

    entry = read_entry(tmp_path / "o" / "tiny.json", "store")
    assert entry.spec.descriptor.noise_map and entry.spec.config.in_channels == 2
    assert meta["sha256"] == sha256_file(tmp_path / "o" / "tiny.safetensors")
