#!/usr/bin/env bash
# Train models concurrently on one GPU within a time budget, with exactly the `n3 train`
# code path: the two bundled denoisers (configs/blind-gray.toml, blind-color.toml) by
# default, or CONFIGS="paper-sr sr" for the super-resolution recipes (any configs/NAME.toml).
#
#   scripts/gpu_train.sh BUDGET_SECONDS [DEVICE] [OUT]
#     BUDGET_SECONDS  wall time for the whole script (probe + training + export)
#     DEVICE          cuda (default), cuda:N or cpu (cpu: to check the script end to end)
#     OUT             where results go [$OUT or ./gpu_out]; at most 8 files:
#                     <name>.safetensors/.json/.md for both models + <name>-run.tar
#                     (metrics.jsonl, config.toml, stdout/stderr log, final checkpoint)
# Env: CONFIGS (config names, default "blind-gray blind-color"), PROBE_S (probe seconds, default 30), RESERVE_S (start-up + validation + export
# allowance, default 25), EXTRA_SET ("k=v k=v" config overrides for both runs, e.g. for a
# tiny CPU check), DATA (data root, default .gpu/data from scripts/prepare_gpu_data.sh),
# INIT (a folder, e.g. weights: every model starts from <name>.safetensors there, `n3 train
# --init`, the fine-tuning a short lease can afford; the script refuses at once when one is
# missing or does not fit its config: CONFIGS="cpu-blind-gray cpu-blind-color" for the
# bundled half-resolution weights).
# Run from the repository root with PYTHONPATH=$PWD (no pip install needed).
set -euo pipefail
if [ -n "${INIT:-}" ]; then  # relative to where the script was started
  INIT=$(cd "$INIT" 2>/dev/null && pwd) || { echo "error: INIT folder not found" >&2; exit 1; }
fi
cd "$(dirname "$0")/.."
BUDGET=${1:?usage: scripts/gpu_train.sh BUDGET_SECONDS [DEVICE] [OUT]}
DEVICE=${2:-cuda}
OUTDIR=${3:-${OUT:-./gpu_out}}
PROBE_S=${PROBE_S:-30}
RESERVE_S=${RESERVE_S:-25}
DATA=${DATA:-.gpu/data}
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
START=$(date +%s)
for d in "$DATA/BSDS500/train" "$DATA/BSDS500/test"; do
  [ -d "$d" ] || { echo "error: $d missing: run scripts/prepare_gpu_data.sh first" >&2; exit 1; }
done
CONFIGS=${CONFIGS:-"blind-gray blind-color"}
# Monitoring images (test sets: watched, never used to select anything; they replace a
# config's validation.dataset, which needs ../shared or $N3_DATA): Set5 for the SR
# tasks, Set12 for the denoisers.
val_for() {
  local sub=Set12
  grep -q '^kind = "sr"' "configs/$1.toml" && sub=Set5/HR
  for d in "$DATA/$sub" ".gpu/eval/data/$sub" "../shared/datasets/$sub"; do
    [ -d "$d" ] && { echo "$d"; return; }
  done
  echo "warning: no $sub folder found: $1 trains without validation PSNR" >&2
}
COMMON=(--device "$DEVICE" --data "$DATA/BSDS500/train" --data "$DATA/BSDS500/test")
EXTRA=()
for kv in ${EXTRA_SET:-}; do EXTRA+=(--set "$kv"); done
name_of() { sed -n 's/^name = "\(.*\)"/\1/p' "configs/$1.toml"; }
declare -A INITF
if [ -n "${INIT:-}" ]; then
  for c in $CONFIGS; do
    INITF[$c]="$INIT/$(name_of "$c").safetensors"
    [ -f "${INITF[$c]}" ] || { echo "error: INIT=$INIT has no $(name_of "$c").safetensors for $c" >&2; exit 1; }
    # Refuse now, not after the probe: the weights must fit the config's architecture.
    $PY - "configs/$c.toml" "${INITF[$c]}" ${EXTRA[@]+"${EXTRA[@]}"} <<'PYEOF' || exit 1
import sys
from safetensors.torch import load_file
from n3cli.errors import WeightsError
from n3cli.models.arch import get_arch
from n3cli.train.config import load_config
from n3cli.weights.store import check_state_dict
sets = [v for k, v in zip(sys.argv[3::2], sys.argv[4::2]) if k == "--set"]
cfg = load_config(sys.argv[1], sets)
try:
    check_state_dict(get_arch(cfg.arch).build(cfg.model), load_file(sys.argv[2]), sys.argv[2])
except WeightsError as err:
    sys.exit(f"error: {sys.argv[2]} does not fit {sys.argv[1]}: {err.message}")
PYEOF
  done
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/n3gpu.XXXXXX")
# Never leave a training process or the scratch folder behind.
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$OUTDIR"
$PY - <<PYEOF
import torch, platform
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda {torch.cuda.is_available()}"
      + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
PYEOF

# (a) throughput probe: both configs at once, as they will run.
echo "== probe: ${PROBE_S}s, both models concurrently on $DEVICE"
pids=()
for c in $CONFIGS; do
  $PY -m n3cli.cli.train_cmd --config configs/$c.toml --out "$WORK/probe-$c" "${COMMON[@]}" \
    --max-minutes "$($PY -c "print($PROBE_S/60)")" --set schedule.steps=10000000 \
    --set runtime.log_every=5 --set 'validation.folder=""' --set 'validation.dataset=""' --set checkpoint.every_minutes=0 -q \
    ${INITF[$c]:+--init "${INITF[$c]}"} ${EXTRA[@]+"${EXTRA[@]}"} >"$WORK/probe-$c.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do
  # A failed probe is reported, not fatal: the planning below falls back to the time limit.
  wait "$p" || { echo "warning: a probe failed:" >&2; tail -5 "$WORK"/probe-*.log >&2; }
done

# (b) size both runs to what is left of the budget.
NOW=$(date +%s)
LEFT=$(( BUDGET - (NOW - START) - RESERVE_S ))
[ "$LEFT" -gt 5 ] || { echo "error: budget too small ($LEFT s left after the probe)" >&2; exit 1; }
declare -A STEPS BN
for c in $CONFIGS; do
  rate=$($PY scripts/gpu_plan.py rate "$WORK/probe-$c")
  read -r s b < <($PY scripts/gpu_plan.py steps "$WORK/probe-$c" "$LEFT")
  if [ "$s" -le 2 ] && [ "$DEVICE" != cpu ]; then
    # A failed probe must not turn the run into 2 steps: let --max-minutes end it.
    echo "warning: no usable probe rate for $c: training until the time limit" >&2
    s=10000000; b=200
  fi
  grep -q '^batchnorm = false' "configs/$c.toml" && b=0  # no BatchNorm: no statistics phase
  STEPS[$c]=$s; BN[$c]=$b
  echo "$c: probe $rate samples/s -> $s steps + $b BatchNorm steps in ${LEFT}s"
done

# (c) train both concurrently; --max-minutes is only the safety net.
SAFETY=$($PY -c "print(max(0.1, ($BUDGET - ($(date +%s) - $START) - 10) / 60))")
echo "== training (safety stop after $SAFETY min)"
pids=()
for c in $CONFIGS; do
  mkdir -p "$WORK/$c"
  $PY -m n3cli.cli.train_cmd --config configs/$c.toml --out "$WORK/$c" "${COMMON[@]}" \
    --set "validation.folder=\"$(val_for "$c")\"" --set 'validation.dataset=""' --max-minutes "$SAFETY" \
    --set schedule.steps=${STEPS[$c]} --set schedule.bn_steps=${BN[$c]} \
    --set validation.every_steps=$(( ${STEPS[$c]} / 4 + 1 )) ${INITF[$c]:+--init "${INITF[$c]}"} ${EXTRA[@]+"${EXTRA[@]}"} \
    >"$WORK/$c/train.log" 2>&1 &
  pids+=($!)
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done

# (d) collect: 3 model files per model + one tar of the run.
echo "== results"
for c in $CONFIGS; do
  run="$WORK/$c"
  tail -3 "$run/train.log" || true
  name=$(name_of "$c")
  for ext in safetensors json md; do
    [ -f "$run/$name.$ext" ] && cp "$run/$name.$ext" "$OUTDIR/"
  done
  files=(metrics.jsonl config.toml train.log)
  ck=$(stat -c %s "$run/checkpoint.safetensors" 2>/dev/null || echo 0)
  [ "$ck" -gt 0 ] && [ "$ck" -lt 15000000 ] && files+=(checkpoint.safetensors)
  existing=(); for f in "${files[@]}"; do [ -f "$run/$f" ] && existing+=("$f"); done
  tar -cf "$OUTDIR/$name-run.tar" -C "$run" "${existing[@]}"
  $PY scripts/gpu_plan.py summary "$run"
done
[ -n "$(ls -A "$OUTDIR" 2>/dev/null)" ] || fail=1
echo "total wall time: $(( $(date +%s) - START )) s (budget $BUDGET s); outputs in $OUTDIR"
rm -rf "$WORK"
exit $fail
