"""Training throughput of `n3 train` (the real loop), per runtime variant.

    python bench/train_speed.py --config configs/blind-gray.toml --device cuda \
        --seconds 20 --variants base,bf16,cl --data .gpu/data/BSDS500/train

Each variant trains for ``--seconds`` in this process (fresh run folder, validation off)
and reports the steady samples/s (median of logged intervals, the first left out) and
steps/s. Variants: base, bf16 (runtime.amp), cl (channels_last), compile, tf32mm (TF32 also for
the N3 GEMMs), and '+' combinations (e.g. bf16+cl). Use --seconds 40 or more on a GPU:
start-up and cuDNN autotuning take the first ~10 s. Results go to stdout and, with --json, to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from n3cli.train import TrainOptions, load_config, train  # noqa: E402

VARIANT_SETS = {"base": [], "bf16": ["runtime.amp=\"bf16\""], "cl": ["runtime.channels_last=true"],
                "compile": ["runtime.compile=true"], "tf32mm": ["runtime.tf32_matmul=true"]}


def measure(config: Path, device: str, seconds: float, variant: str, extra: list[str]) -> dict:
    sets = ["schedule.kind=\"exp\"", "schedule.steps=10000000", "schedule.bn_steps=0",
            "validation.folder=\"\"", "checkpoint.every_minutes=0", "runtime.log_every=5", *extra]
    for part in variant.split("+"):
        sets += VARIANT_SETS[part]
    cfg = load_config(config, sets)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        r = train(cfg, TrainOptions(out=Path(tmp) / "run", device=device, max_minutes=seconds / 60,
                                    progress=False))
        wall = time.monotonic() - t
        recs = [json.loads(x) for x in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    ready = next(x.get("ready_s") for x in recs if x.get("event") in ("start", "resume"))
    rate = r.samples_per_s or 0.0
    return {"variant": variant, "samples_per_s": round(rate, 2),
            "steps_per_s": round(rate / cfg.optim.batch_size, 3), "steps": r.steps_done,
            "ready_s": ready, "wall_s": round(wall, 1), "final_loss": r.final_loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--variants", default="base")
    ap.add_argument("--data", action="append", default=[])
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    extra = list(a.sets)
    if a.data:
        extra.append("data.train=[" + ", ".join(json.dumps(d) for d in a.data) + "]")
    results = []
    for v in a.variants.split(","):
        try:
            res = measure(a.config, a.device, a.seconds, v, extra)
        except Exception as err:  # report and go on: one failing variant must not hide others
            res = {"variant": v, "error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
        results.append(res)
        print(json.dumps(res), flush=True)
    if a.json:
        a.json.write_text(json.dumps({"config": str(a.config), "device": a.device, "results": results}, indent=1))


if __name__ == "__main__":
    main()
