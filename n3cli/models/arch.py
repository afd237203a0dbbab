"""Architectures by name (``arch`` in a model's JSON and in a training config).

An architecture is its config type, a builder and a ``describe`` function that derives
the engine-facing geometry of a model (minimum size, size multiple, halo, scales) from a
config. Building a model, the weights store, import, training and export all dispatch
here, so a new family (one without BatchNorm, one with an upsampler) is one
:func:`register_arch` call, and the engine never learns its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch.nn as nn

from n3cli.models.descriptor import ModelDescriptor

DEFAULT_ARCH = "n3net"  # what a JSON without "arch" (written before the registry) holds


@dataclass(frozen=True)
class Architecture:
    """How to make and describe models of one family."""

    name: str
    config_type: type  # a frozen dataclass with from_dict / to_dict
    build: Callable[[Any], nn.Module]
    describe: Callable[..., ModelDescriptor]  # (config, **task fields) -> descriptor

    def config_from_dict(self, d: dict[str, Any]) -> Any:
        return self.config_type.from_dict(dict(d))


_ARCHS: dict[str, Architecture] = {}


def register_arch(arch: Architecture) -> Architecture:
    _ARCHS[arch.name] = arch
    return arch


def get_arch(name: str) -> Architecture:
    """The architecture called ``name``; ``ValueError`` naming the known ones otherwise."""
    _load_builtin()
    if name not in _ARCHS:
        raise ValueError(f"unknown architecture '{name}' (known: {', '.join(sorted(_ARCHS))})")
    return _ARCHS[name]


def arch_names() -> list[str]:
    _load_builtin()
    return sorted(_ARCHS)


def _load_builtin() -> None:
    # The built-in families register themselves on import.
    import n3cli.models.registry  # noqa: F401  (n3net)
    import n3cli.models.sr  # noqa: F401  (n3net-sr)
    import n3cli.models.raw  # noqa: F401  (n3net-raw)
