"""Resumable training checkpoints: one safetensors file, written atomically.

Tensors (model, optimiser state, RNG states) are safetensors entries; everything else
(step, config identity, optimiser hyper-parameters, Python/NumPy RNG states) is JSON in
the file's metadata, with a sha256 over all tensor bytes so that a damaged file is
detected rather than resumed. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from n3cli.errors import CheckpointError
from n3cli.io.atomic import atomic_write

FORMAT = "n3cli-train-checkpoint/1"
CHECKPOINT_NAME = "checkpoint.safetensors"


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k]
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _optimizer_split(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for idx, entry in state["state"].items():
        plain["state"][str(idx)] = {}
        for key, v in entry.items():
            if torch.is_tensor(v):
                tensors[f"optim.{idx}.{key}"] = v.detach().cpu().contiguous()
                plain["state"][str(idx)][key] = None
            else:
                plain["state"][str(idx)][key] = v
    return tensors, plain


def _optimizer_join(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> dict[str, Any]:
    state = {}
    for idx, entry in plain["state"].items():
        state[int(idx)] = {k: (tensors[f"optim.{idx}.{k}"] if v is None else v) for k, v in entry.items()}
    return {"state": state, "param_groups": plain["param_groups"]}


def rng_snapshot() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """All global RNG states: torch CPU and every CUDA device, NumPy, Python."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    plain = {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
             "python": json.loads(json.dumps(random.getstate()))}
    return tensors, plain


def rng_restore(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.split(".")[-1]))
    if cuda and torch.cuda.is_available():
        states = [tensors[k] for k in cuda][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)
    n = plain["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    p = plain["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def save_checkpoint(path: Path, *, model_state: dict[str, torch.Tensor], optimizer_state: dict[str, Any],
                    step: int, identity: dict[str, Any], extra: dict[str, Any] | None = None,
                    ema_state: dict[str, torch.Tensor] | None = None) -> None:
    """Write the checkpoint to ``path`` atomically (temp file in the same folder + replace).

    ``ema_state``: the moving average of the weights (train/ema.py), when the run keeps one.
    """
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in (ema_state or {}).items()})
    opt_t, opt_plain = _optimizer_split(optimizer_state)
    rng_t, rng_plain = rng_snapshot()
    tensors.update(opt_t)
    tensors.update(rng_t)
    meta = {"format": FORMAT, "step": step, "identity": identity, "optimizer": opt_plain,
            "rng": rng_plain, "extra": extra or {}, "sha256": _digest(tensors)}
    # Atomic (a crash leaves the previous checkpoint), with an output's usual permissions.
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata={"n3cli": json.dumps(meta)}))


def load_checkpoint(path: Path, identity: dict[str, Any] | None = None,
                    may_differ: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read and verify a checkpoint. Returns model/optimizer state, EMA (or None), step, extra
    and the identity it was saved with.

    A damaged file, a foreign file or one made with another configuration (``identity``,
    except its top-level sections named in ``may_differ``) raises :class:`CheckpointError`.
    RNG states are restored by :func:`rng_restore`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}", "start without --resume")
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["n3cli"])
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or not an n3 checkpoint",
                              str(err).splitlines()[0][:120] if str(err) else type(err).__name__) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an n3 training checkpoint ({meta.get('format')})")
    if _digest(tensors) != meta.get("sha256"):
        raise CheckpointError(f"checkpoint {path} is corrupt (checksum mismatch)")
    saved = {k: v for k, v in meta["identity"].items() if k not in may_differ}
    wanted = {k: v for k, v in json.loads(json.dumps(identity or {})).items() if k not in may_differ}
    if identity is not None and saved != wanted:
        diff = _first_difference(saved, wanted)
        hint = "resume with the same config, or use a new --out"
        if {**saved, "schedule": None} == {**wanted, "schedule": None}:  # the one change a resume may accept
            hint = "add --reschedule to accept a changed [schedule], or " + hint
        raise CheckpointError(f"checkpoint {path} belongs to another configuration ({diff})", hint)
    model = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    ema = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    return {"model": model, "ema": ema or None, "optimizer": _optimizer_join(tensors, meta["optimizer"]),
            "step": int(meta["step"]), "extra": meta.get("extra", {}), "identity": meta["identity"],
            "rng_tensors": {k: v for k, v in tensors.items() if k.startswith("rng.")},
            "rng_plain": meta["rng"]}


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else k)
    return f"{where}: {a!r} != {b!r}"
