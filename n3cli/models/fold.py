"""Inference-time folding of BatchNorm into the convolution before it.

In eval mode ``BN(conv(x))`` is an affine map per channel, so it can be merged into the
convolution's weights and bias. That removes one full read and write of every 64-channel
feature map. ``bench/n3_speed.py`` vs ``bench/n3_speed.py --plain`` shows the effect of
folding together with the engine's channels_last layout (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution computing ``bn(conv(x))`` with ``bn`` in eval mode."""
    with torch.no_grad():
        w = conv.weight.float()
        scale = bn.weight.float() / torch.sqrt(bn.running_var.float() + bn.eps)
        bias = conv.bias.float() if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                          conv.padding, conv.dilation, conv.groups, bias=True,
                          padding_mode=conv.padding_mode, device=conv.weight.device)
        fused.weight.copy_(w * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean.float()) * scale + bn.bias.float())
    return fused.to(conv.weight.dtype)


def fold_batchnorm_(module: nn.Module) -> int:
    """Fold every ``Conv2d`` directly followed by a ``BatchNorm2d`` inside an ``nn.Sequential``.

    In place: the convolution is replaced by the folded one and the BatchNorm by
    ``nn.Identity``. Only valid for inference (BatchNorm in eval mode, running statistics
    tracked). Returns how many pairs were folded.
    """
    count = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if (type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d
                    and bn.track_running_stats and bn.running_mean is not None):
                seq[i] = fold_conv_bn(conv, bn)
                seq[i + 1] = nn.Identity()
                count += 1
    return count


def folded_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with its BatchNorms folded; ``model`` is untouched."""
    twin = copy.deepcopy(model).eval()
    fold_batchnorm_(twin)
    return twin
