"""What models exist, which are installed, and which one ``--model auto`` picks."""

from __future__ import annotations

from dataclasses import dataclass

from n3cli.errors import ModelNotFoundError
from n3cli.models import ModelDescriptor, ModelSpec, list_specs
from n3cli.weights.sources import source_for
from n3cli.weights.store import Entry, installed

#: Bundled blind models ``--model auto`` falls back to, by image kind.
BLIND_COLOR, BLIND_GRAY = "n3net-blind-color", "n3net-blind"


@dataclass(frozen=True)
class ModelInfo:
    """A known model and whether it is installed (one row of ``n3 weights list``): the
    spec says what it is, the store entry (None when not installed) where it lives."""

    spec: ModelSpec
    entry: Entry | None
    licence: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def descriptor(self) -> ModelDescriptor:
        return self.spec.descriptor

    @property
    def installed(self) -> bool:
        return self.entry is not None

    @property
    def where(self) -> str:
        return self.entry.where if self.entry else "not installed"

    @property
    def params(self) -> int:
        return self.spec.num_params


def available_models() -> list[ModelInfo]:
    """The union of the code registry, bundled JSONs and store JSONs, sorted by name."""
    entries = installed()  # registers specs found only on disk
    specs = {s.name: s for s in list_specs()}
    specs.update({n: e.spec for n, e in entries.items()})
    rows = []
    for name in sorted(specs):
        entry, src = entries.get(name), source_for(name)
        licence = entry.licence if entry else (src.licence if src else "")
        rows.append(ModelInfo(specs[name], entry, licence))
    return rows


def choose_model(sigma: float | None, color: bool) -> str:
    """The ``--model auto`` rule.

    1. A colour image and the bundled colour model installed: that model.
    2. The paper model trained for exactly this sigma, if installed (gray; on colour
       images it runs through the engine's gray-on-colour path).
    3. The best installed blind model: colour for colour images, gray for gray,
       falling back to the other one.
    4. Otherwise ``ModelNotFoundError`` saying how to get one.
    """
    have = installed()
    if color and BLIND_COLOR in have:
        return BLIND_COLOR
    if sigma is not None and float(sigma).is_integer():
        paper = f"n3net-paper-s{int(sigma)}"
        if paper in have:
            return paper
    order = (BLIND_COLOR, BLIND_GRAY) if color else (BLIND_GRAY, BLIND_COLOR)
    for name in order:
        if name in have:
            return name
    where = f"for sigma {sigma:g}" if sigma is not None else "for an unknown noise level"
    raise ModelNotFoundError(
        f"no installed model {where}",
        "run `n3 weights fetch paper` (sigma 25/50/70) or pick one with --model (see `n3 weights list`)")
