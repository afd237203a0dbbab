"""``n3 --help``, ``--version`` and usage errors answer without loading torch (or numpy's
heavier friends): the CLI imports heavy modules only where they are used.
Seconds are measured by ``bench/cli_startup.py``, not here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from n3cli.cli.main import main
sys.argv = ["n3"] + sys.argv[1:]
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "scipy", "tifffile", "imagecodecs", "rawpy", "safetensors")
               if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["denoise", "--help"], ["compare", "--help"],
                                  ["eval", "--help"], ["train", "--help"], ["weights", "--help"],
                                  ["denoise"], ["nosuchcommand"]])
def test_light_commands_do_not_import_torch(args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                          timeout=60)
    assert "HEAVY=\n" in proc.stdout, (args, proc.stdout[-300:], proc.stderr[-500:])


def test_cli_gray_on_colour_choices_match_the_engine():
    from n3cli.cli.options import GRAY_ON_COLOR_CHOICES
    from n3cli.engine.runner import GRAY_ON_COLOR_STRATEGIES

    assert tuple(GRAY_ON_COLOR_CHOICES) == tuple(GRAY_ON_COLOR_STRATEGIES)


def test_cli_sr_choices_match_the_protocol():
    from n3cli.cli.options import SR_DATASET_CHOICES, SR_SCALE_CHOICES
    from n3cli.eval.sr import SR_DATASETS, SR_SCALES

    assert tuple(SR_DATASET_CHOICES) == tuple(SR_DATASETS) and tuple(SR_SCALE_CHOICES) == tuple(SR_SCALES)


def test_cli_precision_choices_match_the_engine():
    from n3cli.cli.options import PRECISION_CHOICES
    from n3cli.engine.precision import PRECISIONS

    assert tuple(PRECISION_CHOICES) == tuple(PRECISIONS)
