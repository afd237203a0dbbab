"""Where downloadable weights come from: data, not code (url, sha256, licence).

The architecture of each name lives in :mod:`n3cli.models.registry`; this table only
says where its weights can be fetched and under which terms.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Upstream base URL of the paper's repository; ``--mirror`` replaces it.
PAPER_BASE_URL = "https://github.com/visinf/n3net/raw/master"

PAPER_LICENCE = ("research and education only, no redistribution "
                 "(visinf/n3net licence; converted locally at the user's request)")

PAPER_NOTICE = (
    "The paper's released weights (Ploetz & Roth, NeurIPS 2018, visinf/n3net) are licensed "
    "for research and education only and must not be redistributed. n3 downloads them at "
    "your request, verifies their sha256 and converts them to safetensors in your local "
    "store; the original files are deleted.")


@dataclass(frozen=True)
class WeightSource:
    """A downloadable checkpoint: relative path under a base URL, its sha256, its licence."""

    name: str
    relpath: str
    sha256: str
    licence: str
    kind: str = "paper-t7"  # legacy PyTorch pickle: import with weights_only=True only


PAPER_SOURCES: dict[str, WeightSource] = {
    f"n3net-paper-s{s}": WeightSource(
        name=f"n3net-paper-s{s}",
        relpath=f"results_gaussian_denoising/pretrained_sigma{s}/checkpoint/051_ckpt.t7",
        sha256=h,
        licence=PAPER_LICENCE,
    )
    for s, h in ((25, "ca3ceea2f9f11cf685a14c0444aeeb3f0841b68deb665133b22c5e9eacf37ff4"),
                 (50, "ffa39e15ba8a71992103cf2a223b1ef084cfca5c2e2b7724b277c88d2ec04a02"),
                 (70, "640a2eee3d5c8675fbf89b78f91578f0a8cce5572132c740663a788ecb485d9c"))
}


def source_for(name: str) -> WeightSource | None:
    """The download source of a model name, if it has one."""
    return PAPER_SOURCES.get(name)
