"""Importing foreign checkpoints (the paper's ``.t7`` pickles) and fetching the paper's weights.

A pickle is only ever opened here, at the user's request, with
``torch.load(weights_only=True)``; it is converted to safetensors + JSON in the store and
never kept or executed afterwards.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from n3cli.errors import UsageError, WeightsError
from n3cli.models import ModelSpec, N3NetConfig, descriptor_for, get_spec
from n3cli.weights.sources import PAPER_BASE_URL, PAPER_SOURCES, source_for
from n3cli.weights.store import (bundled_dir, check_name, check_state_dict, save_model, scan,
                                 sha256_file, spec_from_meta, store_dir)

# Upstream module path of the distance BatchNorm -> this project's name.
_KEY_RENAMES = (("n3aggregation.aggregation.nnn.bn", "dist_bn"),)


def convert_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream key names -> this project's (also drops a DataParallel ``module.`` prefix)."""
    out = {}
    for key, value in sd.items():
        if key.startswith("module."):
            key = key[len("module."):]
        for old, new in _KEY_RENAMES:
            key = key.replace(old, new)
        out[key] = value
    return out


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """Find the state dict inside a loaded checkpoint (``{'net': sd}``, ``{'state_dict': sd}``...)."""
    if isinstance(obj, dict):
        for key in ("net", "state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise WeightsError(f"{path} holds no model state dict",
                           "expected {'net': state_dict} or a plain state dict")
    return obj


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or of a PyTorch checkpoint (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises several types for bad files
            raise WeightsError(f"{path} is not a valid safetensors file: {err}") from None
    try:
        with warnings.catch_warnings():  # torch warns about old pickle protocols: not the user's business
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unpickling errors come in many types; all mean "not loadable"
        # (torch's own text suggests weights_only=False, i.e. running the file's code: not shown)
        raise WeightsError(f"{path} is not a tensor-only PyTorch checkpoint: it is not a checkpoint, or it "
                           "holds Python objects, which n3 never unpickles",
                           "export a state dict of tensors (or .safetensors) and import that") from None
    return _unwrap(obj, path)


def infer_config(sd: dict[str, torch.Tensor]) -> N3NetConfig:
    """Guess an :class:`N3NetConfig` from tensor shapes (for names the registry lacks).

    Patch size, stride, window and space-to-depth cannot be seen in the weights: the
    paper's values are assumed. So only the paper's layout is inferred, an input of the
    image planes alone: a first convolution that takes more channels than the network
    gives back (noise maps, space-to-depth) could be packed in more than one way, and a
    guess would install a model that cannot run; such files are refused.
    """
    try:
        conv1 = sd["blocks.0.conv1.weight"]
        num_n3 = len({k.split(".")[1] for k in sd if k.startswith("nls.")})
        cout = sd[f"blocks.{num_n3}.conv2.weight"].shape[0]
        depth = 2 + sum(1 for k, v in sd.items()
                        if re.fullmatch(r"blocks\.0\.layer1\.\d+\.weight", k) and v.ndim == 4)
        embed = [v for k, v in sorted(sd.items(), key=lambda kv: _natural(kv[0]))
                 if re.fullmatch(r"nls\.0\.embedcnn\.\d+\.weight", k) and v.ndim == 4]
        n3c = sd["blocks.0.conv2.weight"].shape[0]
        k = sd["blocks.1.conv1.weight"].shape[1] // n3c - 1 if num_n3 else 7
        if conv1.ndim != 4 or conv1.shape[1] != cout:  # a WeightsError passes the except below
            raise WeightsError(f"cannot tell how this N3Net's {conv1.shape[1]}-channel input is packed "
                               "(noise maps, half resolution) from its tensors alone",
                               "import its .safetensors with the .json n3 wrote beside it")
        return N3NetConfig(image_channels=cout, in_channels=cout, out_channels=cout,
                           features=conv1.shape[0], depth=depth, n3_channels=n3c,
                           embed_features=embed[0].shape[0] if embed else 64,
                           embed_out=embed[-1].shape[0] if embed else 8,
                           embed_depth=len(embed) or 3, k=k, num_n3=num_n3)
    except (KeyError, IndexError, ValueError) as err:  # missing tensors, shapes no N3Net has
        raise WeightsError(f"cannot recognise an N3Net in this checkpoint ({err})",
                           "import it under a registered name (see `n3 weights list`)") from None


def _description_beside(weights: Path, sha256: str | None) -> dict[str, Any] | None:
    """The ``<stem>.json`` that n3 writes beside every ``.safetensors`` it exports (``n3
    train``, ``weights/``, the store), when there is one: it says what the tensors cannot
    (packing, window, task), so the model is imported as it was trained."""
    js = weights.with_suffix(".json")
    if weights.suffix != ".safetensors" or not js.is_file():
        return None
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
        ok = isinstance(meta, dict) and isinstance(meta.get("config"), dict) and isinstance(meta.get("descriptor"), dict)
    except (OSError, ValueError) as err:
        raise WeightsError(f"unreadable model description {js}: {err}", "move it away to import the weights alone") from None
    if not ok:
        return None  # some other JSON: not ours
    if meta.get("sha256") not in (None, sha256):
        raise WeightsError(f"{js} describes other weights than {weights.name} (sha256 mismatch)",
                           "keep each .json with its own .safetensors")
    return meta


def _natural(key: str) -> list:
    return [int(p) if p.isdigit() else p for p in key.split(".")]


def import_checkpoint(path: Path, name: str, store: Path | None = None, *,
                      sigma: float | None = None, licence: str | None = None,
                      summary: str | None = None) -> Path:
    """Convert a checkpoint into ``<store>/<name>.safetensors`` + ``.json``; return the JSON path.

    For a paper model name the file must have the published sha256. A registered name
    fixes the architecture; another name takes it from the JSON n3 writes beside its
    ``.safetensors`` exports (``path`` may name either file), or else one inferred from
    the tensor shapes (and ``sigma`` for its descriptor). The conversion is strict: every
    tensor must fit (missing BatchNorm ``num_batches_tracked`` counters are the one
    allowed gap).
    """
    path, name = Path(path), check_name(name)
    if path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
        path = path.with_suffix(".safetensors")  # the description was named: import its weights
    store = Path(store) if store is not None else store_dir()
    if name in scan(bundled_dir(), "bundled"):
        raise UsageError(f"'{name}' is a bundled model", "import under another --name")
    source_sha = sha256_file(path) if path.is_file() else None
    src = source_for(name)
    if src is not None and source_sha is not None and source_sha != src.sha256:
        raise WeightsError(f"{path} is not the published checkpoint of '{name}' (sha256 mismatch)",
                           "use the file from visinf/n3net or another --name")
    tensors = convert_keys(read_checkpoint(path))
    spec = get_spec(name)
    described = _description_beside(path, source_sha) if spec is None else None
    if described is not None:
        spec = spec_from_meta(name, described)
        if sigma is not None and spec.descriptor.sigma != float(sigma):
            raise UsageError(f"{path.with_suffix('.json').name} already says what '{name}' takes", "drop --sigma")
        summary = summary or str(described.get("summary", "")) or None
        licence = licence if licence is not None else (str(described.get("licence", "")) or None)
    elif spec is None:
        cfg = infer_config(tensors)
        spec = ModelSpec(name, cfg, descriptor_for(cfg, sigma=sigma), summary or f"imported from {path.name}")
    elif sigma is not None and spec.descriptor.sigma not in (None, float(sigma)):
        raise UsageError(f"'{name}' is a sigma-{spec.descriptor.sigma:g} model", "drop --sigma")
    model = spec.build()  # dispatches on the spec's architecture
    own = model.state_dict()
    for key, value in own.items():  # the paper's files predate these counters
        if key.endswith("num_batches_tracked") and key not in tensors:
            tensors[key] = value.clone()
    check_state_dict(model, tensors, name)
    model.load_state_dict(tensors, strict=True)
    lic = licence if licence is not None else (src.licence if src else "unknown (imported by the user)")
    extra = {"source": {"file": path.name, "sha256": source_sha}}
    return save_model(store, name, model, spec.config, spec.descriptor,
                      summary=summary or spec.summary, licence=lic, extra=extra, arch=spec.arch)


def _mirror_base(mirror: str | None) -> str:
    if not mirror:
        return PAPER_BASE_URL
    if "://" not in mirror:  # a plain folder
        folder = Path(mirror).expanduser().resolve()
        if not folder.is_dir():
            raise UsageError(f"--mirror {mirror}: {'not a folder' if folder.exists() else 'no such folder'}",
                             "give the folder that holds the upstream layout, or an http(s):// URL")
        return folder.as_uri()
    return mirror.rstrip("/")


def _download(url: str, dest: Path, sha256: str) -> None:
    """Download ``url`` to ``dest`` and verify its sha256 (``WeightsError`` otherwise)."""
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https", "file"):
        raise UsageError(f"unsupported mirror URL scheme '{scheme}'", "use http(s)://, file:// or a folder")
    try:
        if scheme == "file":
            with urllib.request.urlopen(url) as resp, open(dest, "wb") as out:
                shutil.copyfileobj(resp, out)
        else:
            import pooch

            pooch.get_logger().setLevel(logging.WARNING)
            # The hash is checked below, the same way for every scheme.
            pooch.retrieve(url, known_hash=None, fname=dest.name, path=dest.parent,
                           progressbar=False)
    except OSError as err:  # URLError and requests' errors are OSErrors
        dest.unlink(missing_ok=True)
        hint = ("check the --mirror folder's contents" if scheme == "file"
                else "check the network or use --mirror" if url.startswith(PAPER_BASE_URL)
                else "check the network and the --mirror URL")
        raise WeightsError(f"cannot download {url}: {err}", hint) from None
    if sha256_file(dest) != sha256:
        dest.unlink(missing_ok=True)
        raise WeightsError(f"download of {url} fails its sha256 check",
                           "the mirror serves a different or corrupt file; nothing was installed")


def _installed_from(store: Path, name: str, sha256: str) -> bool:
    """``name`` is in ``store``, converted from the file of that sha256, its weights intact."""
    try:
        meta = json.loads((store / f"{name}.json").read_text(encoding="utf-8"))
        return (meta.get("source", {}).get("sha256") == sha256
                and sha256_file(store / f"{name}.safetensors") == meta.get("sha256"))
    except (OSError, ValueError, AttributeError):
        return False


def fetch_paper(mirror: str | None = None, store: Path | None = None,
                progress: Callable[[str], None] | None = None, force: bool = False) -> list[Path]:
    """Download, verify and convert the paper's three released models; return the JSONs
    written (models already installed from the published files are kept, unless ``force``).

    ``mirror`` replaces ``https://github.com/visinf/n3net/raw/master`` (``file://`` URLs
    and plain folders work too). All files are downloaded to a temporary folder and
    verified before any is converted, so a bad file leaves the store untouched; the
    pickles are deleted with that folder.
    """
    base = _mirror_base(mirror)
    store = Path(store) if store is not None else store_dir()
    say = progress or (lambda _msg: None)
    tmp = Path(tempfile.mkdtemp(prefix="n3-fetch-"))
    try:
        files = []
        for name, src in PAPER_SOURCES.items():
            if not force and _installed_from(store, name, src.sha256):
                say(f"{name} is installed (use --force to fetch it again)")
                continue
            url = f"{base}/{src.relpath}"
            say(f"downloading {name} from {url}")
            dest = tmp / f"{name}.t7"
            _download(url, dest, src.sha256)
            files.append((name, dest))
        out = []
        for name, dest in files:
            say(f"converting {name}")
            out.append(import_checkpoint(dest, name, store))
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
