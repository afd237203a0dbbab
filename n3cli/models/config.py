"""Architecture configuration of an N3Net: every hyper-parameter is a value here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class N3NetConfig:
    """Hyper-parameters of ``CNN -> (N3 block -> CNN) x num_n3``.

    The defaults are the paper's gray Gaussian denoiser (spec section 2).
    ``image_channels`` of the ``in_channels`` are image planes (carried through the
    residual paths); the rest are conditioning maps (e.g. a noise-level map).
    """

    image_channels: int = 1
    in_channels: int = 1
    out_channels: int = 1
    features: int = 64  # width of the local CNNs
    depth: int = 6  # convolutions per local CNN (conv1 + (depth-2) x conv/BN/ReLU + conv2)
    n3_channels: int = 8  # channels entering each N3 block ("intermediate channels")
    embed_features: int = 64
    embed_out: int = 8
    embed_depth: int = 3
    k: int = 7
    patch: int = 10
    stride: int = 5
    window: int = 15
    num_n3: int = 2
    bn_momentum: float = 0.001
    # BatchNorm in the local and embedding CNNs (the denoisers have it; the paper's SR
    # network does not). The N3 distance BatchNorm is part of the block either way.
    batchnorm: bool = True
    # Space-to-depth factor applied to the input (1 = none): a cheaper model for CPU
    # training that runs the whole network at 1/s resolution on s*s times the channels.
    unshuffle: int = 1

    def __post_init__(self) -> None:
        if self.in_channels < self.image_channels:
            raise ValueError("in_channels must include the image channels")
        if self.depth < 2 or self.embed_depth < 2:
            raise ValueError("depth and embed_depth must be at least 2")
        if min(self.k, self.patch, self.stride, self.window, self.unshuffle) < 1:
            raise ValueError("k, patch, stride, window and unshuffle must be positive")
        if min(self.features, self.embed_features, self.embed_out, self.n3_channels) < 1:
            raise ValueError("features, embed_features, embed_out and n3_channels must be positive")
        # The noisy image travels through the first channels of every stage (residual
        # paths): all its (unshuffled) planes must fit into the N3 blocks' input.
        if self.num_n3 and self.n3_channels < self.image_channels * self.unshuffle**2:
            raise ValueError("n3_channels must be at least image_channels * unshuffle**2")

    @property
    def n3_out_channels(self) -> int:
        return self.n3_channels * (self.k + 1)

    def macs_per_pixel(self) -> float:
        """Nominal multiply-adds per input pixel of one forward pass (spec section 7).

        Convolutions of the local CNNs and of the N3 blocks' embedding and temperature
        CNNs, plus the N3 distances and aggregation over full windows; everything runs at
        1/unshuffle resolution. Used to scale measured throughput from one config to another.
        """
        s2 = self.unshuffle**2
        cin, cout = self.in_channels * s2, self.out_channels * s2
        f, ef = self.features, self.embed_features

        def cnn(a: int, b: int, width: int, depth: int) -> int:
            return 9 * (a * width + (depth - 2) * width * width + width * b)

        total = 0
        for i in range(self.num_n3 + 1):
            a = cin if i == 0 else self.n3_out_channels
            b = cout if i == self.num_n3 else self.n3_channels
            total += cnn(a, b, f, self.depth)
        per_query = (self.window**2 - 1) * self.patch**2 * (self.embed_out + self.k * self.n3_channels)
        n3 = cnn(self.n3_channels, self.embed_out, ef, self.embed_depth) \
            + cnn(self.n3_channels, 1, ef, self.embed_depth) + per_query / self.stride**2
        total += self.num_n3 * n3
        return total / s2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "N3NetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown N3Net config keys: {sorted(unknown)}")
        return cls(**d)
