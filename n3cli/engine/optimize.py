"""The model as the engine runs it: eval-mode copy, BatchNorm folded, device layout.

Measured with ``bench/n3_speed.py`` (paper N3Net, 512x512, 1 CPU thread, see
docs/PERFORMANCE.md): folding the eval-mode BatchNorms into their convolutions and running
in channels_last on the CPU (oneDNN's native layout, no reorder around each convolution)
together cut the forward time by about 40 %. The user's model object is never
modified: training code can keep using it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from n3cli.models.fold import folded_copy


def memory_format_for(device: torch.device) -> torch.memory_format:
    """channels_last on the CPU, where it pays off; the default layout elsewhere.

    On CUDA the choice has not been measured yet (no GPU was available): keep PyTorch's
    default there rather than guess.
    """
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def inference_model(model: nn.Module, device: torch.device, dtype: torch.dtype = torch.float32,
                    fold: bool = True, layout: torch.memory_format | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` on ``device`` in ``dtype``, ready for inference.

    ``fold``: merge every BatchNorm2d into the convolution before it (exact up to float
    rounding, ~1e-7). ``layout``: memory format of weights (default
    :func:`memory_format_for`); feed inputs with :func:`as_layout`. Every remaining
    BatchNorm (the N3 distance BatchNorm) stays float32, as :mod:`n3cli.engine.precision`
    requires.
    """
    from n3cli.engine.precision import cast_model

    net = folded_copy(model) if fold else copy.deepcopy(model).eval()
    net = cast_model(net.to(device), dtype)
    return net.to(memory_format=layout or memory_format_for(device))


def as_layout(x: torch.Tensor, device: torch.device,
              layout: torch.memory_format | None = None) -> torch.Tensor:
    """``x`` (4-D) in the memory format the engine uses on ``device``."""
    return x.contiguous(memory_format=layout or memory_format_for(device))

