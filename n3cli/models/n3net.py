"""N3Net: local CNNs interleaved with N3 blocks (Ploetz & Roth, NeurIPS 2018)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.models.blocks import LocalCNN, N3Block, init_paper_
from n3cli.models.config import N3NetConfig


class N3Net(nn.Module):
    """``CNN0 -> N3 -> CNN1 -> N3 -> CNN2`` (for ``num_n3 = 2``).

    Input: (B, in_channels, H, W), image planes first, then conditioning maps, intensities
    in [0, 1]. Output: (B, out_channels, H, W). Any H, W >= 1 works; with ``unshuffle = s``
    the input is padded (reflect) to a multiple of s and cropped back.
    """

    def __init__(self, config: N3NetConfig):
        super().__init__()
        self.config = cfg = config
        s2 = cfg.unshuffle**2
        cin, cout, img = cfg.in_channels * s2, cfg.out_channels * s2, cfg.image_channels * s2
        blocks = []
        nls = []
        for i in range(cfg.num_n3 + 1):
            first, last = i == 0, i == cfg.num_n3
            bin_ = cin if first else cfg.n3_out_channels
            bout = cout if last else cfg.n3_channels
            residual = img if first else bin_
            blocks.append(LocalCNN(bin_, bout, cfg.features, cfg.depth, residual, cfg.bn_momentum,
                                   cfg.batchnorm))
            if not last:
                nls.append(N3Block(cfg.n3_channels, cfg.k, cfg.patch, cfg.stride, cfg.window,
                                   cfg.embed_features, cfg.embed_out, cfg.embed_depth,
                                   cfg.bn_momentum, cfg.batchnorm))
        self.blocks = nn.ModuleList(blocks)
        self.nls = nn.ModuleList(nls)
        init_paper_(self)

    def set_n3_impl(self, impl: str, max_chunk_bytes: int | None = None) -> None:
        """Choose the N3 kernel ("blocked" or "reference") and its memory bound."""
        for nl in self.nls:
            nl.impl = impl
            if max_chunk_bytes is not None:
                nl.max_chunk_bytes = max_chunk_bytes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.unshuffle
        h, w = x.shape[-2:]
        if s > 1:
            ph, pw = (-h) % s, (-w) % s
            if ph or pw:
                mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
                x = F.pad(x, (0, pw, 0, ph), mode=mode)
            x = F.pixel_unshuffle(x, s)
            # Image planes first, as the residual paths expect.
            x = _reorder_unshuffled(x, self.config.in_channels, self.config.image_channels, s)
        y = self.blocks[0](x)
        for nl, block in zip(self.nls, self.blocks[1:]):
            y = block(nl(y))
        if s > 1:
            y = F.pixel_shuffle(y, s)[..., :h, :w]
        return y


def _reorder_unshuffled(x: torch.Tensor, cin: int, img: int, s: int) -> torch.Tensor:
    # pixel_unshuffle groups channels as c*s*s + offset: image channels' planes are the
    # first img*s*s channels already, so nothing to do. Kept as a function to document it.
    return x


def conv_twin(config: N3NetConfig, keep_embedding: bool = False) -> nn.Module:
    """The same network with each N3 block replaced by a cheap 8 -> 64 pass-through.

    Used by benchmarks to price the N3 blocks against the convolutions around them.
    ``keep_embedding``: the pass-through still runs the block's embedding and temperature
    CNNs, so the twin has exactly N3Net's convolutions and only the neighbour search and
    aggregation are priced.
    """
    net = N3Net(config)

    class _PassThrough(nn.Module):
        def __init__(self, reps: int, block: nn.Module | None):
            super().__init__()
            self.reps = reps
            self.block = block

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x.repeat(1, self.reps, 1, 1)
            if self.block is not None:
                e = self.block.embedcnn(x)
                t = self.block.tempcnn(x)
                # Use both results (cheaply) so that no backend could skip them.
                y[:, :1] += 0.0 * (e[:, :1] + t)
            return y

    net.nls = nn.ModuleList([_PassThrough(config.k + 1, nl if keep_embedding else None)
                             for nl in net.nls])
    return net
