"""The weights store: ``<name>.safetensors`` + ``<name>.json`` (+ optional ``<name>.md``).

Two folders hold such triples: the repository's ``weights/`` (bundled, trained by the
project) and the user store (``$N3_HOME`` or the platform's data dir) for imported and
downloaded models. Only safetensors are read at run time: no pickle is ever loaded here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import n3cli
from n3cli.errors import ModelNotFoundError, UsageError, WeightsError
from n3cli.models import ModelDescriptor, ModelSpec, get_spec, register
from n3cli.models.arch import DEFAULT_ARCH, get_arch
from n3cli.models.descriptor import task_fields
from n3cli.models.registry import spec_at_scale

FORMAT_VERSION = 1
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def store_dir(create: bool = True) -> Path:
    """The user store: ``$N3_HOME`` if set, else the platform's user data dir; created
    unless ``create`` is False (reading needs no folder: a missing store is empty)."""
    env = os.environ.get("N3_HOME")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs  # only needed without N3_HOME

        path = Path(platformdirs.user_data_dir("n3cli"))
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise WeightsError(f"the model store {path} is not a usable folder: {err.strerror or err}",
                               "point N3_HOME at a writable folder") from None
    return path


def bundled_dir() -> Path:
    """The repository's ``weights/`` folder (models trained and shipped by the project)."""
    return Path(n3cli.__file__).resolve().parent.parent / "weights"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_name(name: str) -> str:
    """Model names become file names: allow letters, digits, ``-``, ``_`` and ``.`` only."""
    if not name or not set(name) <= _NAME_OK or name.startswith("."):
        raise UsageError(f"invalid model name '{name}'",
                           "use letters, digits, '-', '_' and '.' only")
    return name


def save_model(directory: Path, name: str, model: nn.Module, config: Any,
               descriptor: ModelDescriptor, summary: str = "", licence: str = "",
               extra: dict | None = None, arch: str = DEFAULT_ARCH) -> Path:
    """Write ``<name>.safetensors`` and ``<name>.json`` atomically; return the JSON path.

    Both files are written to temporary names in ``directory`` and moved in place with
    ``os.replace``, weights first: the JSON is what makes a model visible, so a reader
    never sees a JSON whose weights are missing. On failure no temporary file remains.
    """
    check_name(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    st_path, js_path = directory / f"{name}.safetensors", directory / f"{name}.json"
    tmp_st = tmp_js = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".safetensors.tmp", dir=directory)
        os.close(fd)
        tmp_st = Path(tmp)
        save_file(tensors, str(tmp_st), metadata={"name": name, "format": str(FORMAT_VERSION)})
        entry: dict[str, Any] = {
            "name": name, "summary": summary, "licence": licence, "arch": arch,
            "config": config.to_dict(), "descriptor": descriptor.to_dict(),
            "sha256": sha256_file(tmp_st), "format": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if extra:
            entry.update({k: v for k, v in extra.items() if k not in entry})
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".json.tmp", dir=directory)
        tmp_js = Path(tmp)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f, indent=2, sort_keys=False)
            f.write("\n")
        for t in (tmp_st, tmp_js):  # mkstemp makes 0600 files; models are ordinary data
            os.chmod(t, 0o644)
        os.replace(tmp_st, st_path)
        tmp_st = None
        os.replace(tmp_js, js_path)
        tmp_js = None
    except OSError as err:
        raise WeightsError(f"cannot write model '{name}' to {directory}: {err.strerror or err}",
                           "check the folder is writable (or set N3_HOME)") from None
    finally:
        for t in (tmp_st, tmp_js):
            if t is not None and t.exists():
                t.unlink()
    return js_path


@dataclass(frozen=True)
class Entry:
    """A model found on disk: its spec, files and metadata."""

    spec: ModelSpec
    json_path: Path
    weights_path: Path
    where: str  # "bundled" or "store"
    meta: dict[str, Any]

    @property
    def licence(self) -> str:
        return str(self.meta.get("licence", ""))


def read_entry(json_path: Path, where: str) -> Entry:
    """Parse a model JSON into an :class:`Entry` (``WeightsError`` if it is malformed)."""
    try:
        meta = json.loads(Path(json_path).read_text(encoding="utf-8"))
        name = check_name(str(meta["name"]))
        spec = spec_from_meta(name, meta)
    except (OSError, ValueError, KeyError, TypeError, UsageError) as err:
        raise WeightsError(f"unreadable model description {json_path}: {err}",
                           "re-import or re-fetch the model") from None
    return Entry(spec, Path(json_path), Path(json_path).with_suffix(".safetensors"), where, meta)


def spec_from_meta(name: str, meta: dict[str, Any]) -> ModelSpec:
    """A :class:`ModelSpec` from a model JSON: the architecture named by ``arch`` builds the
    config and derives the descriptor's geometry; the task contract comes from the file."""
    arch = get_arch(str(meta.get("arch", DEFAULT_ARCH)))
    config = arch.config_from_dict(meta["config"])
    task = task_fields(ModelDescriptor.from_dict(meta["descriptor"]))
    return ModelSpec(name=name, config=config, descriptor=arch.describe(config, **task),
                     summary=str(meta.get("summary", "")), arch=arch.name)


def scan(directory: Path, where: str) -> dict[str, Entry]:
    """All readable entries of a folder, by name (malformed JSONs are skipped)."""
    found: dict[str, Entry] = {}
    try:
        if not directory.is_dir():
            return found
    except OSError:  # e.g. a path through a file: nothing installed there
        return found
    for js in sorted(directory.glob("*.json")):
        try:
            entry = read_entry(js, where)
        except WeightsError:
            continue
        if js.stem == entry.spec.name:
            found[entry.spec.name] = entry
    return found


def unreadable_entries(directory: Path) -> dict[Path, str]:
    """The model JSONs of a folder that :func:`scan` skips, with the reason for each."""
    bad: dict[Path, str] = {}
    try:
        files = sorted(directory.glob("*.json")) if directory.is_dir() else []
    except OSError:
        return bad
    for js in files:
        try:
            read_entry(js, "store")
        except WeightsError as err:
            bad[js] = err.message
    return bad


def installed() -> dict[str, Entry]:
    """Installed models by name. Bundled models take precedence over the store."""
    entries = scan(store_dir(create=False), "store")  # bundled models work whatever N3_HOME is
    entries.update(scan(bundled_dir(), "bundled"))
    for entry in entries.values():
        if get_spec(entry.spec.name) is None:
            register(entry.spec)  # a JSON on disk makes its name known
    return entries


def weights_sha256(name: str) -> str | None:
    """The sha256 of an installed model's weights, as its JSON records it (the hash
    :func:`load_model` verifies the file against); None for a name with no file (bicubic,
    models that live only in memory)."""
    entry = installed().get(name)
    return None if entry is None else str(entry.meta.get("sha256") or "") or None


def not_installed_hint(name: str) -> str:
    """What to run to get a model that is known but not installed."""
    from n3cli.weights.sources import source_for

    if source_for(name) is not None:
        return "run `n3 weights fetch paper` (research-only weights)"
    return "see `n3 weights list` for installed models, or `n3 weights import PATH --name NAME`"


def find_entry(name: str) -> Entry:
    """The installed entry of ``name`` or ``ModelNotFoundError`` with a hint."""
    entries = installed()
    if name in entries:
        return entries[name]
    for folder in (bundled_dir(), store_dir(create=False)):
        js = folder / f"{name}.json"
        why = unreadable_entries(folder).get(js)
        if why:
            raise ModelNotFoundError(f"model '{name}' is installed but broken: {why}",
                                     "fix or remove it, or import the model again")
    if get_spec(name) is not None:
        raise ModelNotFoundError(f"model '{name}' is not installed", not_installed_hint(name))
    raise ModelNotFoundError(f"unknown model '{name}'", "see `n3 weights list`")


def verify_weights_file(entry: Entry) -> None:
    """``WeightsError`` if ``entry``'s weights file is missing or fails the sha256 its JSON
    records (what loading checks first; ``n3 doctor`` asks it of every installed model)."""
    name, path = entry.spec.name, entry.weights_path
    if not path.is_file():
        raise WeightsError(f"weights file of '{name}' is missing: {path}", not_installed_hint(name))
    if str(entry.meta.get("sha256", "")) != sha256_file(path):
        raise WeightsError(f"weights of '{name}' fail their checksum ({path})",
                           "the file is corrupt or was modified: re-import or re-fetch it")


def build_verified(entry: Entry) -> nn.Module:
    """The model of ``entry`` with its weights, checked against the JSON's sha256 and the
    architecture's tensor names and shapes (``WeightsError`` otherwise); in eval mode."""
    name, path = entry.spec.name, entry.weights_path
    verify_weights_file(entry)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"weights of '{name}' are not a valid safetensors file: {err}") from None
    model = entry.spec.build()
    check_state_dict(model, tensors, name)
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def load_model(name: str, device: str | torch.device = "cpu", scale: int | None = None
               ) -> tuple[nn.Module, ModelSpec]:
    """Build ``name`` and load its verified safetensors weights; the model is in eval mode.

    The file's sha256 must match the one recorded in its JSON, and every tensor must
    match the architecture's names and shapes exactly (``WeightsError`` otherwise).
    A multi-scale model (``descriptor.scales``) comes back fixed to ``scale`` (default:
    its largest): a module with ``forward(x)`` and the descriptor of that scale.
    """
    entry = find_entry(name)
    model = build_verified(entry)
    spec = entry.spec
    if spec.descriptor.scales:
        scale = max(spec.descriptor.scales) if scale is None else scale
        if scale not in spec.descriptor.scales:
            raise UsageError(f"{name} upscales by {', '.join(map(str, spec.descriptor.scales))}, not {scale}",
                             "pick one of those with --scale, or another --model")
        spec = spec_at_scale(spec, scale)
        model = model.at_scale(scale)
    elif scale not in (None, 1):
        raise UsageError(f"{name} does not upscale (it is a {spec.descriptor.task} model)",
                         "pick an SR model with --model (see `n3 weights list`)")
    return model.to(torch.device(device) if isinstance(device, str) else device), spec


def check_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor], name: str) -> None:
    """Strict names-and-shapes check with a one-line ``WeightsError`` on the first problem."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    bad = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or bad:
        parts = []
        if bad:
            k = bad[0]
            parts.append(f"{len(bad)} shape mismatch(es), e.g. {k}: file {tuple(tensors[k].shape)}"
                         f" vs model {tuple(own[k].shape)}")
        if missing:
            parts.append(f"{len(missing)} missing tensor(s), e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}")
        raise WeightsError(f"weights of '{name}' do not fit its architecture: " + "; ".join(parts),
                           "the file belongs to another configuration")
