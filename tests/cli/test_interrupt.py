"""Ctrl-C / SIGTERM in the middle of a batch: no temp or partial files; finished
outputs are valid images; a rerun resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import TINY_SCRIPT, save_gray

from n3cli.io import read_image


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_batch_leaves_no_debris_and_resumes(tmp_path, sig, code):
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(8):
        save_gray(src / f"im{i}.png", 48, 48, seed=i)
    env = {**os.environ, "N3_TEST_DELAY": "0.5"}
    cmd = [sys.executable, str(TINY_SCRIPT), "denoise", str(src), "-o", str(out), "-s", "25"]
    # A test runner started in the background inherits SIGINT as ignored; give the child
    # the default disposition so that Python installs its KeyboardInterrupt handler.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (out.is_dir() and any(out.glob("*_denoised.png"))):
        time.sleep(0.05)
    time.sleep(0.2)  # now inside a later image's forward pass or write
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if n.endswith(".tmp") or n.startswith(".")], left
    assert 1 <= len(left) < 8
    for name in left:
        assert read_image(out / name).pixels.shape == (48, 48, 1)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{8 - len(left)} succeeded, {len(left)} skipped, 0 failed" in done.stderr
