"""How fast the CLI answers when it has no work to do (help, version, usage errors).

Each command runs in a fresh process (best of --repeat); the last column says whether
torch was imported. ``python -X importtime -c "import n3cli.cli.main"`` shows where the
rest goes.

    python bench/cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = [["--help"], ["--version"], ["denoise", "--help"], ["denoise"], ["eval", "--sigma", "x"],
         ["nosuchcommand"]]
PROBE = ("import sys; from n3cli.cli.main import main; sys.argv = ['n3'] + sys.argv[1:]\n"
         "try:\n    main()\nexcept SystemExit:\n    pass\n"
         "sys.stderr.write('TORCH=%d' % ('torch' in sys.modules))")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    print(f"{'command':28s} {'best s':>7s} {'median s':>9s}  torch")
    for case in CASES:
        times, torch_loaded = [], "?"
        for _ in range(args.repeat):
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", PROBE, *case], env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            torch_loaded = "yes" if "TORCH=1" in p.stderr else "no"
        times.sort()
        print(f"{'n3 ' + ' '.join(case):28s} {times[0]:7.3f} {times[len(times) // 2]:9.3f}  {torch_loaded}")


if __name__ == "__main__":
    main()
