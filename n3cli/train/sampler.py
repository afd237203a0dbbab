"""Which images each step trains on, and the per-step random streams.

Everything random in a step derives from (seed, step, rank): the image order is a fixed
random permutation per epoch (``sweeps`` passes over the image list, as the paper's
epochs), and crops, flips and noise come from a generator re-seeded at every step. A run
therefore needs no sampler state beyond its step to resume bit for bit, and the data
pipeline stays on the device with no host round trip.
"""

from __future__ import annotations

import torch

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def stream_seed(seed: int, *parts: int) -> int:
    """A well-mixed 63-bit seed for (seed, *parts)."""
    x = _splitmix64(seed & _MASK)
    for p in parts:
        x = _splitmix64(x ^ (p & _MASK))
    return x >> 1


class EpochSampler:
    """Image indices for global batch positions; permutations cached on ``device``."""

    def __init__(self, num_images: int, sweeps: int, seed: int, device: torch.device):
        self.n, self.length, self.seed, self.device = num_images, num_images * sweeps, seed, device
        self._cache: dict[int, torch.Tensor] = {}

    def _epoch(self, e: int) -> torch.Tensor:
        if e not in self._cache:
            g = torch.Generator().manual_seed(stream_seed(self.seed, 0x5A3F, e))
            perm = torch.randperm(self.length, generator=g) % self.n
            self._cache = {k: v for k, v in self._cache.items() if k >= e - 1}
            self._cache[e] = perm.to(self.device)
        return self._cache[e]

    def indices(self, start: int, count: int) -> torch.Tensor:
        """Image indices of global sample positions ``start .. start+count-1``."""
        e0, i0 = divmod(start, self.length)
        e1, i1 = divmod(start + count, self.length)
        if e0 == e1:
            return self._epoch(e0)[i0:i1]
        parts = [self._epoch(e0)[i0:]]
        parts += [self._epoch(e) for e in range(e0 + 1, e1)]
        parts.append(self._epoch(e1)[:i1])
        return torch.cat(parts)


def step_generator(device: torch.device, seed: int, step: int, rank: int) -> torch.Generator:
    """The generator for everything random in one step of one rank."""
    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(seed, step, rank))
    return g
