"""N3Net for camera raw (architecture ``n3net-raw``): heteroscedastic Bayer denoising.

The network is an :class:`~n3cli.models.n3net.N3Net` whose input is one CFA plane
followed by two conditioning maps, ``a`` and ``b``, of the Poisson-Gaussian noise model
``variance = a * x + b`` (normalised units, x in [0, 1]); the block-0 residual carries
the noisy plane only (spec section 5). The descriptor says "Bayer planes, one at a time,
conditioned on a and b", so the engine runs each of the four half-resolution planes of a
mosaic with that plane's own (a, b), as constants or per-pixel maps, and needs nothing
else to know about raw files.
"""

from __future__ import annotations

from dataclasses import replace

from n3cli.models.arch import Architecture, register_arch
from n3cli.models.config import N3NetConfig
from n3cli.models.descriptor import ModelDescriptor
from n3cli.models.n3net import N3Net
from n3cli.models.registry import descriptor_for

RAW_CONDITIONING = ("a", "b")

#: The paper's raw model (spec section 5): 128 features, depth 9, 32 intermediate
#: channels, k = 3, the gray model's N3 geometry; its weights were never released.
PAPER_RAW = N3NetConfig(image_channels=1, in_channels=3, out_channels=1, features=128, depth=9,
                        n3_channels=32, k=3)


def describe_raw(cfg: N3NetConfig, **kw) -> ModelDescriptor:
    """Descriptor of a raw model: the N3Net geometry of :func:`descriptor_for`, Bayer
    packing, conditioned on the ``a`` and ``b`` maps (``kw`` sets task fields)."""
    if cfg.image_channels != 1 or cfg.in_channels != 1 + len(RAW_CONDITIONING) or cfg.out_channels != 1:
        raise ValueError("an n3net-raw model takes one CFA plane and the a and b maps "
                         "(image_channels 1, in_channels 3, out_channels 1)")
    base = replace(descriptor_for(cfg), task="raw-denoise", packing="bayer",
                   conditioning=RAW_CONDITIONING)
    return replace(base, **kw)


register_arch(Architecture("n3net-raw", N3NetConfig, N3Net, describe_raw))
