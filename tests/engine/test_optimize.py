"""The engine's inference preparation: BatchNorm folded, channels_last, same outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from n3cli.engine import restore_image, sigma_conditions
from n3cli.engine.optimize import as_layout, inference_model, memory_format_for
from n3cli.models import N3Net, N3NetConfig, ModelDescriptor
from n3cli.models.blocks import N3Block

CPU = torch.device("cpu")
SMALL = N3NetConfig(features=16, depth=4, embed_features=8, embed_depth=3, n3_channels=4, k=3,
                    window=5)


@pytest.fixture
def trained_looking(randomise_bn) -> N3Net:
    torch.manual_seed(3)
    net = N3Net(SMALL)
    randomise_bn(net, seed=3)
    return net.eval()


def test_inference_model_matches_plain_eval_and_uses_channels_last_on_cpu(trained_looking):
    net = trained_looking
    prepared = inference_model(net, CPU)
    assert memory_format_for(CPU) == torch.channels_last
    conv = next(m for m in prepared.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    x = torch.rand(1, 1, 53, 47)
    with torch.inference_mode():
        ref = net(x)
        out = prepared(as_layout(x, CPU))
    assert (out - ref).abs().max().item() <= 1e-5
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules()), "original untouched"


def test_n3_block_output_in_channels_last_equals_the_autograd_path():
    torch.manual_seed(0)
    block = N3Block(4, k=3, patch=10, stride=5, window=5, embed_features=8).eval()
    x = torch.rand(1, 4, 40, 35)
    with torch.enable_grad():
        ref = block(x.clone().requires_grad_(True)).detach()  # torch.cat path
    with torch.inference_mode():
        out = block(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert (out - ref).abs().max().item() <= 1e-6


def test_denoise_image_leaves_the_callers_model_in_training_mode_and_unfolded(trained_looking):
    net = trained_looking
    net.train()
    desc = ModelDescriptor(min_size=40)
    img = np.random.default_rng(0).random((40, 40, 1), dtype=np.float32)
    out = restore_image(net, desc, img, sigma_conditions(25.0), CPU, tile=0)
    assert out.shape == img.shape and np.isfinite(out).all()
    assert net.training
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    with torch.inference_mode():
        ref = net.eval()(torch.from_numpy(img.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0)
    assert np.abs(out - ref).max() <= 1e-5


def test_n3_block_gradients_in_channels_last_equal_the_default_layout():
    # float64: the two layouts' convolutions round differently, and the kNN softmax
    # amplifies float32 rounding to ~1e-5; in float64 any real difference would show.
    torch.manual_seed(1)
    block = N3Block(4, k=2, patch=10, stride=5, window=5, embed_features=8).train().double()
    x = torch.rand(2, 4, 30, 25, dtype=torch.float64)
    grads = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        xi = x.clone().contiguous(memory_format=fmt).requires_grad_(True)
        block.zero_grad()
        y = block(xi)
        assert y.is_contiguous(memory_format=fmt)
        weights = torch.linspace(-1, 1, y.shape[1], dtype=y.dtype).reshape(1, -1, 1, 1)
        (y * weights).square().sum().backward()
        grads.append((y.detach(), xi.grad.clone(), block.embedcnn[0].weight.grad.clone()))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-9)
