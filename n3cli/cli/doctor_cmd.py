"""``n3 doctor``: what this machine offers n3 (devices, threads, models, store, data)."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import click


def _devices() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                            "cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available(),
                            "cuda_devices": [], "mps": False}
    if info["cuda"]:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["cuda_devices"].append(f"cuda:{i} {p.name} ({p.total_memory / 2**30:.0f} GiB)")
        info["cuda_version"] = torch.version.cuda
    mps = getattr(torch.backends, "mps", None)
    info["mps"] = bool(mps is not None and mps.is_available())
    from n3cli.engine.device import resolve_device
    from n3cli.engine.precision import cpu_has_native_bf16

    info["auto_device"] = str(resolve_device("auto"))
    info["cpu_native_bf16"] = cpu_has_native_bf16()
    return info


def _models() -> dict[str, Any]:
    """Known models, installed or not; ``broken``: installed ones whose weights cannot load
    (a missing file, or one that fails the sha256 its JSON records)."""
    try:
        from n3cli.weights import available_models
        rows = available_models()
        broken = {m.name: why for m in rows if m.entry is not None and (why := _weights_problem(m.entry))}
    except Exception as err:  # doctor reports problems, it does not stop at them
        return {"error": f"{type(err).__name__}: {err}"}
    return {"installed": [f"{m.name} ({m.where})" for m in rows if m.installed and m.name not in broken],
            "not_installed": [m.name for m in rows if not m.installed], "broken": broken}


def _weights_problem(entry) -> str | None:
    """Why an installed model's weights would not load, or None."""
    from n3cli.errors import WeightsError
    from n3cli.weights.store import verify_weights_file

    try:
        verify_weights_file(entry)
    except WeightsError as err:
        return err.message
    return None


def _store() -> dict[str, Any]:
    """Where models go and whether they can: a missing store is reported, not created
    (doctor changes nothing; the first ``n3 weights fetch`` creates it)."""
    try:
        from n3cli.weights import store_dir
        path = Path(store_dir(create=False))
    except Exception as err:
        return {"path": None, "writable": False, "error": f"{type(err).__name__}: {err}"}
    if not path.is_dir():
        parent = next((p for p in path.parents if p.exists()), None)
        creatable = not path.exists() and parent is not None and os.access(parent, os.W_OK | os.X_OK)
        return {"path": str(path), "exists": False, "writable": creatable,
                **({"error": "a file, not a folder"} if path.exists() else {})}
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".n3doctor", suffix=".tmp"):
            pass
        writable = True
    except OSError:
        writable = False
    from n3cli.weights.store import unreadable_entries

    broken = {str(p): why for p, why in unreadable_entries(path).items()}
    return {"path": str(path), "exists": True, "writable": writable, "broken": broken}


def _datasets() -> dict[str, Any]:
    try:
        from n3cli.data.testsets import default_data_dir
        root = default_data_dir()
    except Exception as err:
        note = err.one_line() if hasattr(err, "one_line") else str(err)
        return {"path": None, "note": note}
    found = {}
    for name, pattern in (("Set12", "Set12/*.png"), ("BSD68", "BSD68/*.png"), ("CBSD68", "CBSD68/*.png"),
                          ("Urban100", "Urban100/image_SRF_4/*_HR.png"), ("Set5", "Set5/HR/*"),
                          ("Train400", "Train400/*.png"), ("BSDS500", "BSDS500/data/images/*/*.jpg")):
        n = len(list(root.glob(pattern)))
        if n:
            found[name] = n
    return {"path": str(root), "found": found}


def collect() -> dict[str, Any]:
    """Everything ``n3 doctor`` reports, as a dict (also its ``--json``)."""
    from n3cli import __version__

    return {"n3": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "devices": _devices(), "models": _models(), "store": _store(), "datasets": _datasets()}


@click.command("doctor", short_help="Check devices, models, store and data.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(as_json: bool) -> None:
    """Report what this machine offers n3: devices, threads, installed models, the
    weights store and the test data. Changes nothing."""
    info = collect()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    d, m, s, ds = info["devices"], info["models"], info["store"], info["datasets"]
    ok, no = "ok", "--"
    lines = [
        f"n3 {info['n3']}  python {info['python']}  torch {d['torch']}  ({info['platform']})",
        f"cpu      {d['cpu_count']} cores, torch uses {d['threads']} thread{'s' if d['threads'] != 1 else ''} (n3 denoise/upscale --threads N, or OMP_NUM_THREADS=N for any command)",
        (f"bf16     {ok} native on this CPU: --precision bf16 is faster, n3 train's amp = auto uses it"
         if d["cpu_native_bf16"] else f"bf16     {no} not native on this CPU (emulated: slower than fp32)"),
        f"cuda     {ok + ' ' + ', '.join(d['cuda_devices']) if d['cuda'] else no + ' not available'}",
        f"mps      {ok if d['mps'] else no + ' not available'}",
        f"device   --device auto uses {d['auto_device']}",
    ]
    if "error" in m:
        lines.append(f"models   {no} cannot list models: {m['error']}")
    elif m["installed"]:
        lines.append(f"models   {ok} {len(m['installed'])} installed: {', '.join(m['installed'])}")
    else:
        lines.append(f"models   {no} none installed: run `n3 weights fetch paper` or see `n3 weights list`")
    for name, why in m.get("broken", {}).items():
        lines.append(f"models   {no} {name} cannot load: {why}")
    if s.get("path"):
        missing = (f" ({s['error']})" if s.get("error") else
                   " (not created yet)" if s.get("exists") is False else "")
        lines.append(f"store    {ok if s['writable'] else no + ' NOT writable'} {s['path']}{missing}")
        for file, why in s.get("broken", {}).items():
            lines.append(f"store    {no} a broken model file, fix or remove it: {why}")
    else:
        lines.append(f"store    {no} {s.get('error')}")
    if ds.get("path"):
        sets = ", ".join(f"{k} ({v})" for k, v in ds["found"].items()) or "no known test sets"
        lines.append(f"data     {ok if ds['found'] else no} {ds['path']}: {sets}")
    else:
        lines.append(f"data     {no} {ds.get('note')}")
    for line in lines:
        click.echo(line)


COMMANDS = [doctor]
