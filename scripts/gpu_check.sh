#!/usr/bin/env bash
# One-shot GPU check of the N3 kernels and the tiled engine (budget: < 90 s in total).
#
#   OUT=/some/dir PYTHONPATH=$PWD bash scripts/gpu_check.sh        # default device cuda
#   N3_GPU_DEVICE=cpu bash scripts/gpu_check.sh                      # dry run on a CPU box
#
# Writes under $OUT (default ./out): env.txt, pytest.txt, n3_speed.txt (+ .json),
# tiling.txt, precision.txt, summary.txt. Every step has its own timeout so that a slow
# step cannot eat the others' time; summary.txt lists each step's exit status.
set -u
OUT=${OUT:-./out}
DEV=${N3_GPU_DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export N3_TEST_DEVICE="$DEV"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
step() {  # step NAME SECONDS OUTFILE CMD...
  local name=$1 secs=$2 out=$3; shift 3
  local t0=$SECONDS
  timeout "$secs" "$@" > "$out" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$SUMMARY"
}

step env 10 "$OUT/env.txt" python -c "
import sys, torch
print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda)
print('available', torch.cuda.is_available(), torch.cuda.device_count())
if torch.cuda.is_available(): print(torch.cuda.get_device_name(0), torch.cuda.mem_get_info())
for m in ('platformdirs', 'pooch', 'png', 'rawpy'): sys.modules[m] = None
import n3cli.ops, n3cli.models, n3cli.engine, n3cli.engine.tiling, n3cli.engine.precision
print('imports ok without platformdirs/pooch/pypng/rawpy')"

step pytest 38 "$OUT/pytest.txt" python -m pytest tests/ops tests/engine -q -x \
  -p no:cacheprovider --durations=10

step n3_speed 18 "$OUT/n3_speed.txt" python bench/n3_speed.py --device "$DEV" \
  --sizes 512,1024,2048 --json "$OUT/n3_speed.json"

step tiling 12 "$OUT/tiling.txt" python bench/tiling.py --device "$DEV" --size 1024 \
  --tiles 256 --modes exact,blend

step precision 8 "$OUT/precision.txt" python -c "
import torch
from n3cli.engine import precision
from n3cli.models import N3Net, N3NetConfig
dev = torch.device('$DEV'); torch.manual_seed(0)
x = torch.rand(1, 1, 512, 512, device=dev)
with torch.inference_mode():
    ref = N3Net(N3NetConfig()).to(dev).eval()(x)
    for name in ('fp16', 'bf16'):
        try:
            dt = precision.resolve_precision(name, dev)
        except Exception as e:
            print(name, 'unsupported:', e); continue
        torch.manual_seed(0)
        net = precision.cast_model(N3Net(N3NetConfig()).to(dev).eval(), dt)
        y = net(x.to(dt)).float()
        print(name, 'max |diff| to fp32', (y - ref).abs().max().item(), 'mean', (y - ref).abs().mean().item())"

cat "$SUMMARY"
