"""Where the N3Net's inference time goes: per stage of the network, and per op inside the N3 kernel.

    python bench/n3_profile.py [--sizes 512,1024] [--threads 1] [--device cpu]

The paper-config N3Net, prepared as the engine runs it (``n3cli.engine.optimize``:
BatchNorm folded, channels_last on the CPU), random weights, one gray image per size.

Table 1 (stages): wall seconds of each part of one forward pass, timed with module hooks
(synchronised on CUDA): the three local CNNs, and for each N3 block its embedding CNN,
its temperature CNN and the aggregation (the kernel plus the concatenation that feeds
the next CNN). Table 2 (kernel ops): ``torch.profiler`` self time of the aggregation of
the first N3 block run alone on its real inputs, grouped by what the ops do (GEMMs,
softmax and logs of the kNN rounds, gathers and scatters, element-wise, copies).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import _common  # noqa: F401  (puts the checkout on sys.path)
import torch

from _common import machine
from n3cli.engine.optimize import as_layout, inference_model
from n3cli.models import N3Net, N3NetConfig
from n3cli.models.blocks import N3Block
from n3cli.ops.blocked import n3_aggregate_blocked

# Op name fragments -> group, first match wins.
GROUPS = (
    ("GEMM", ("mm", "matmul", "baddbmm", "addmm")),
    ("conv", ("conv",)),
    ("kNN softmax/exp/log", ("softmax", "exp", "log", "max")),
    ("gather/scatter", ("index", "scatter", "gather", "take")),
    ("copies/layout", ("copy", "clone", "contiguous", "cat", "empty", "zeros", "fill", "pad")),
    ("element-wise", ("add", "sub", "mul", "div", "neg", "clamp", "square", "sum", "mean", "where", "sqrt")),
)


def group_of(op: str) -> str:
    name = op.removeprefix("aten::")
    for group, keys in GROUPS:
        if any(k in name for k in keys):
            return group
    return "other"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stage_times(model: N3Net, x: torch.Tensor, device: torch.device) -> list[tuple[str, float]]:
    """Seconds per stage of one forward pass (module hooks)."""
    marks: dict[str, float] = {}
    order: list[str] = []

    def hook(name: str, edge: str):
        def fn(*_):
            sync(device)
            marks[f"{name}:{edge}"] = time.perf_counter()
            if edge == "start" and name not in order:
                order.append(name)
        return fn

    handles = []
    for i, blk in enumerate(model.blocks):
        handles += [blk.register_forward_pre_hook(hook(f"local CNN {i + 1}", "start")),
                    blk.register_forward_hook(hook(f"local CNN {i + 1}", "end"))]
    for i, nl in enumerate(model.nls):
        for part, mod in (("N3 block", nl), ("embedding CNN", nl.embedcnn), ("temperature CNN", nl.tempcnn)):
            name = f"{part} {i + 1}"
            handles += [mod.register_forward_pre_hook(hook(name, "start")),
                        mod.register_forward_hook(hook(name, "end"))]
    sync(device)
    t0 = time.perf_counter()
    model(x)
    sync(device)
    total = time.perf_counter() - t0
    for h in handles:
        h.remove()
    span = {n: marks[f"{n}:end"] - marks[f"{n}:start"] for n in order}
    rows = []
    for n in order:
        if n.startswith(("embedding", "temperature")):
            continue  # listed with their block
        if n.startswith("N3 block"):
            i = n.split()[-1]
            emb, tmp = span[f"embedding CNN {i}"], span[f"temperature CNN {i}"]
            rows += [(f"embedding CNN {i}", emb), (f"temperature CNN {i}", tmp),
                     (f"aggregation {i} (kernel + concat)", span[n] - emb - tmp)]
        else:
            rows.append((n, span[n]))
    rows.append(("total forward", total))
    return rows


def kernel_inputs(model: N3Net, x: torch.Tensor) -> tuple[N3Block, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The first N3 block and its real (x, embedding, log temperature) inputs."""
    seen: dict[str, torch.Tensor] = {}
    nl = model.nls[0]
    h = nl.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    model(x)
    h.remove()
    xb = seen["x"]
    return nl, xb, nl.embedcnn(xb), nl.tempcnn(xb)


def kernel_ops(model: N3Net, x: torch.Tensor, device: torch.device) -> tuple[float, dict[str, float], list]:
    nl, xb, e, lt = kernel_inputs(model, x)

    def run():
        return n3_aggregate_blocked(xb, e, lt, nl.dist_bn, nl.k, nl.patch, nl.stride, nl.window,
                                    max_chunk_bytes=nl.max_chunk_bytes)

    run()
    acts = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=acts) as prof:
        run()
        sync(device)
    events = prof.key_averages()
    if device.type == "cuda":  # host-side work (index planning, launches) shows up here
        host = sorted(events, key=lambda ev: -ev.self_cpu_time_total)[:8]
        print("  host (CPU) self time of the kernel's ops on CUDA, top 8: "
              + ", ".join(f"{ev.key} {ev.self_cpu_time_total / 1e3:.1f} ms x{ev.count}" for ev in host))
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    by_group: dict[str, float] = defaultdict(float)
    ops = []
    for ev in events:
        us = float(getattr(ev, attr, 0.0) or 0.0)
        if us <= 0:
            continue
        by_group[group_of(ev.key)] += us / 1e6
        ops.append((ev.key, ev.count, us / 1e6))
    ops.sort(key=lambda r: -r[2])
    total = sum(by_group.values())
    return total, dict(by_group), ops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--top", type=int, default=10, help="ops listed per size")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = inference_model(N3Net(N3NetConfig()), device)
    print(f"machine: {machine(device)}; paper-config N3Net, engine-prepared")
    with torch.inference_mode():
        model(as_layout(torch.rand(1, 1, 128, 128, device=device), device))  # warm-up
        for size in (int(s) for s in args.sizes.split(",")):
            x = as_layout(torch.rand(1, 1, size, size, device=device), device)
            model(x)  # warm-up at this size (allocator)
            rows = stage_times(model, x, device)
            total = rows[-1][1]
            print(f"\n{size}x{size}: stages of one forward pass")
            print(f"  {'stage':34s} {'s':>8s} {'share':>7s}")
            for name, sec in rows:
                print(f"  {name:34s} {sec:8.3f} {100 * sec / total:6.1f}%")
            ksec, groups, ops = kernel_ops(model, x, device)
            print(f"\n{size}x{size}: aggregation of N3 block 1 alone, profiler self time {ksec:.3f} s")
            print(f"  {'group':24s} {'s':>8s} {'share':>7s}")
            for name, sec in sorted(groups.items(), key=lambda r: -r[1]):
                print(f"  {name:24s} {sec:8.3f} {100 * sec / ksec:6.1f}%")
            print(f"  top ops: {'op':28s} {'calls':>6s} {'s':>8s}")
            for key, count, sec in ops[:args.top]:
                print(f"           {key:28s} {count:6d} {sec:8.3f}")


if __name__ == "__main__":
    main()
