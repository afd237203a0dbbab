"""Building blocks of N3Net: the local CNN and the N3 block (spec section 2)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from n3cli.ops.blocked import DEFAULT_CHUNK_BYTES, n3_aggregate_blocked


class LocalCNN(nn.Module):
    """conv+ReLU, (depth-2) x [conv, BN, ReLU], conv, plus a residual on a channel prefix.

    ``bn1`` exists only so that the released checkpoints' keys load: upstream never
    applied it (applying it destroys the output).
    """

    def __init__(self, cin: int, cout: int, features: int, depth: int, residual: int,
                 bn_momentum: float = 0.001, batchnorm: bool = True):
        super().__init__()
        self.residual = min(residual, cin, cout)
        self.conv1 = nn.Conv2d(cin, features, 3, padding=1, bias=True)
        if batchnorm:
            self.bn1 = nn.BatchNorm2d(features, momentum=bn_momentum)
        layers: list[nn.Module] = []
        for _ in range(depth - 2):
            layers += _conv_norm_relu(features, features, bn_momentum, batchnorm)
        self.layer1 = nn.Sequential(*layers)
        self.conv2 = nn.Conv2d(features, cout, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place ReLU: a fresh 64-channel buffer costs more than the ReLU itself.
        y = self.conv2(self.layer1(self.conv1(x).relu_()))
        n = self.residual
        if n == y.shape[1]:
            return y + x[:, :n]
        return torch.cat([y[:, :n] + x[:, :n], y[:, n:]], dim=1)


def _conv_norm_relu(cin: int, cout: int, momentum: float, batchnorm: bool) -> list[nn.Module]:
    """conv (no bias: the BatchNorm has one), BatchNorm, ReLU; or conv with bias, ReLU."""
    if batchnorm:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, momentum=momentum),
                nn.ReLU(inplace=True)]
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=True), nn.ReLU(inplace=True)]


def _small_cnn(cin: int, cout: int, features: int, depth: int, momentum: float,
               batchnorm: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = cin
    for _ in range(depth - 1):
        layers += _conv_norm_relu(c, features, momentum, batchnorm)
        c = features
    layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=True))
    return nn.Sequential(*layers)


class N3Block(nn.Module):
    """Neural nearest-neighbours block: embedding, temperature, continuous kNN.

    Output channels: concat[x, z_1 - x, ..., z_k - x].
    ``impl`` selects the aggregation kernel: "blocked" (default, memory-bounded) or
    "reference" (explicit gathering, tests only).
    """

    def __init__(self, channels: int, k: int = 7, patch: int = 10, stride: int = 5,
                 window: int = 15, embed_features: int = 64, embed_out: int = 8,
                 embed_depth: int = 3, bn_momentum: float = 0.001, batchnorm: bool = True):
        super().__init__()
        self.k, self.patch, self.stride, self.window = k, patch, stride, window
        self.embedcnn = _small_cnn(channels, embed_out, embed_features, embed_depth, bn_momentum, batchnorm)
        self.tempcnn = _small_cnn(channels, 1, embed_features, embed_depth, bn_momentum, batchnorm)
        self.dist_bn = nn.BatchNorm1d(1)
        self.impl = "blocked"
        self.max_chunk_bytes = DEFAULT_CHUNK_BYTES

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embedcnn(x)
        log_temp = self.tempcnn(x)
        args = (x, e, log_temp, self.dist_bn, self.k, self.patch, self.stride, self.window)
        if self.impl == "reference":
            # The ground-truth kernel (tests, benchmarks) stays out of production imports.
            from n3cli.ops.reference import n3_aggregate_reference

            z = n3_aggregate_reference(*args)
        else:
            z = n3_aggregate_blocked(*args, max_chunk_bytes=self.max_chunk_bytes)
        b, k, c, h, w = z.shape
        if not _is_channels_last(x):
            return torch.cat([x, (z - x.unsqueeze(1)).reshape(b, k * c, h, w)], dim=1)
        # channels_last (the CPU engine's layout): write concat[x, z - x] straight into one
        # channels_last buffer, so that the next convolution needs no layout copy.
        out = torch.empty((b, (k + 1) * c, h, w), device=x.device, dtype=x.dtype,
                          memory_format=torch.channels_last)
        out[:, :c] = x
        diff = out[:, c:].unflatten(1, (k, c))
        if torch.is_grad_enabled() and (x.requires_grad or z.requires_grad):
            diff.copy_(z - x.unsqueeze(1))  # autograd records the slice writes
        else:
            torch.sub(z, x.unsqueeze(1), out=diff)
        return out


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous()


def init_paper_(module: nn.Module) -> None:
    """Initialise as the paper did (spec section 4)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (9 * m.out_channels)))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                w = torch.randn_like(m.weight).abs() * math.sqrt(2.0 / (9 * 64))
                m.weight.copy_(w.clamp(min=0.025))
                m.bias.zero_()
