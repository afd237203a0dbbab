"""n3cli: image restoration with Neural Nearest Neighbors Networks (N3Net).

Usable as a library: :func:`denoise` and :func:`upscale` on arrays (see
:mod:`n3cli.app.api`); :mod:`n3cli.app` for files and batches, :mod:`n3cli.engine`
(running any model on images of any size), :mod:`n3cli.models`, :mod:`n3cli.eval`,
:mod:`n3cli.train`. Heavy modules load on first use, so ``import n3cli`` is cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["denoise", "upscale", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("denoise", "upscale"):
        from n3cli.app import api

        return getattr(api, name)
    raise AttributeError(f"module 'n3cli' has no attribute {name!r}")
