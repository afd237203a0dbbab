"""Batch jobs across processes, GPUs and machines (``torchrun ... -m n3cli denoise DIR``).

Every rank plans the same batch, then keeps the items :func:`rank_of` gives it: a hash of
the input path as given on the command line, so each file goes to exactly one rank,
whichever files other ranks have finished (a rank's writes never change another rank's
share) and however often the command is rerun. Outputs are written atomically per file as
in any batch, so a rank that dies loses only its in-flight file, and rerunning the same
command skips what exists and finishes the rest. At the end every rank sends its report
(JSON bytes over a gloo process group: nothing is pickled) to rank 0, which prints the
one merged summary and sets the exit code.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import timedelta

import torch

from n3cli.app.batch import BatchReport, ItemResult
from n3cli.engine.distributed import DistInfo, dist_info_from_env, init_distributed
from n3cli.io.batch import Plan

#: Ranks may finish their shares hours apart; the final gather waits that long.
GATHER_TIMEOUT = timedelta(days=7)


def rank_of(key: str, world: int) -> int:
    """The rank that owns ``key`` (a stable hash, the same on every machine and rerun)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % world


def share(plan: Plan, info: DistInfo) -> Plan:
    """This rank's items of ``plan`` (rank 0 also keeps the list of ignored files)."""
    if not info.enabled:
        return plan
    mine = [item for item in plan.items if rank_of(str(item.src), info.world) == info.rank]
    return Plan(items=mine, ignored=plan.ignored if info.is_main else [])


def join(device_name: str, threads: int | None) -> tuple[DistInfo, str, int | None]:
    """Join torchrun's group when there is one: (info, this rank's device, CPU threads).

    GPUs: rank ``LOCAL_RANK`` takes ``cuda:LOCAL_RANK``. CPU: the cores are split among
    the ranks of this machine unless ``threads`` says otherwise.
    """
    info = dist_info_from_env()
    if not info.enabled:
        return info, device_name, threads
    from n3cli.engine.device import resolve_device

    device = resolve_device(device_name)
    info, device = init_distributed(device, backend="gloo", timeout=GATHER_TIMEOUT)
    if device.type == "cpu" and threads is None:
        threads = max(1, (os.cpu_count() or 1) // max(1, info.local_world))
    return info, str(device), threads


def gather_reports(report: BatchReport, info: DistInfo, order: list[str]) -> BatchReport | None:
    """Rank 0: every rank's items merged in plan ``order`` (input paths); others: None."""
    if not info.enabled:
        return report
    import torch.distributed as dist

    doc = report.to_dict()
    doc["rank"] = info.rank
    payload = torch.frombuffer(bytearray(json.dumps(doc).encode()), dtype=torch.uint8)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(info.world)]
    dist.all_gather(sizes, torch.tensor([payload.numel()], dtype=torch.int64))
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[:payload.numel()] = payload
    chunks = [torch.zeros(longest, dtype=torch.uint8) for _ in range(info.world)] if info.is_main else None
    dist.gather(padded, chunks, dst=0)
    if not info.is_main:
        return None
    merged = BatchReport(ignored=report.ignored)
    position = {src: i for i, src in enumerate(order)}
    for size, chunk in zip(sizes, chunks or []):
        other = json.loads(chunk[:int(size.item())].numpy().tobytes().decode())
        merged.interrupted |= bool(other["summary"]["interrupted"])
        for item in other["items"]:
            merged.items.append(ItemResult(**{**item, "rank": other["rank"]}))
    merged.items.sort(key=lambda r: position.get(r.input, len(position)))
    return merged
