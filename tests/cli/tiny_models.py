"""A tiny random-weight N3Net standing in for installed weights in CLI tests.

``install(monkeypatch)`` (or ``patch_weights()`` in a subprocess) replaces
``n3cli.weights.load_model`` / ``choose_model`` / ``available_models`` so that
``n3 denoise`` runs in milliseconds without any weights on disk. ``N3_TEST_DELAY``
(seconds) makes each forward pass sleep, so signal tests can hit a batch mid-way.
"""

from __future__ import annotations

import os
import time

import torch

from n3cli.errors import ModelNotFoundError
from n3cli.models import ModelSpec, N3NetConfig, descriptor_for
from n3cli.models.raw import describe_raw
from n3cli.models.registry import spec_at_scale
from n3cli.models.sr import SRConfig, describe_sr

TINY_CFG = N3NetConfig(features=8, depth=3, n3_channels=4, embed_features=8, embed_out=4,
                       embed_depth=2, k=2, patch=4, stride=2, window=5)
TINY_COLOR_CFG = N3NetConfig(image_channels=3, in_channels=4, out_channels=3, features=8, depth=3,
                             n3_channels=4, embed_features=8, embed_out=4, embed_depth=2, k=2,
                             patch=4, stride=2, window=5)
TINY_SR_CFG = SRConfig(layout="lr", scales=(2, 3, 4), features=8, depth=3, embed_features=8, k=2,
                       window=3, tail_channels=4)
TINY_RAW_CFG = N3NetConfig(image_channels=1, in_channels=3, out_channels=1, features=8, depth=3,
                           n3_channels=4, embed_features=8, embed_out=4, embed_depth=2, k=2,
                           patch=4, stride=2, window=5)
SPECS = {
    "tiny-raw": ModelSpec("tiny-raw", TINY_RAW_CFG, describe_raw(TINY_RAW_CFG), "test", arch="n3net-raw"),
    "tiny-sr": ModelSpec("tiny-sr", TINY_SR_CFG, describe_sr(TINY_SR_CFG), "test", arch="n3net-sr"),
    "tiny-s25": ModelSpec("tiny-s25", TINY_CFG, descriptor_for(TINY_CFG, sigma=25.0), "test"),
    "tiny-blind-color": ModelSpec("tiny-blind-color", TINY_COLOR_CFG,
                                  descriptor_for(TINY_COLOR_CFG, sigma_range=(0.0, 75.0)), "test"),
}


class _Slow(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module, delay: float):
        super().__init__()
        self.inner, self.delay = inner, delay

    def forward(self, x):
        time.sleep(self.delay)
        return self.inner(x)


def load_model(name, device="cpu", scale=None):
    if name not in SPECS:
        raise ModelNotFoundError(f"unknown model '{name}'", "see `n3 weights list`")
    spec = SPECS[name]
    torch.manual_seed(0)
    model = spec.build().eval()
    if spec.descriptor.scales:
        scale = scale or max(spec.descriptor.scales)
        if scale not in spec.descriptor.scales:
            from n3cli.errors import UsageError

            raise UsageError(f"{name} upscales by {spec.descriptor.scales}, not {scale}")
        model, spec = model.at_scale(scale), spec_at_scale(spec, scale)
    delay = float(os.environ.get("N3_TEST_DELAY", "0") or 0)
    if delay:
        model = _Slow(model, delay)
    return model, spec


def choose_model(sigma, color):
    return "tiny-blind-color" if color and os.environ.get("N3_TEST_COLOR") else "tiny-s25"


def available_models():
    return []


def install(monkeypatch) -> None:
    import n3cli.weights as w

    monkeypatch.setattr(w, "load_model", load_model, raising=False)
    monkeypatch.setattr(w, "choose_model", choose_model, raising=False)
    monkeypatch.setattr(w, "available_models", available_models, raising=False)


def patch_weights() -> None:
    import n3cli.weights as w

    w.load_model, w.choose_model, w.available_models = load_model, choose_model, available_models


if __name__ == "__main__":  # `python tests/cli/tiny_models.py denoise ...` = n3 with tiny models
    import sys

    patch_weights()
    torch.set_num_threads(1)  # see conftest._one_torch_thread
    from n3cli.cli.main import main

    sys.argv[0] = "n3"
    main()
