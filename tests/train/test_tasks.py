"""Tasks: what the network sees (noise, noise-level map) and the descriptor it exports."""

from __future__ import annotations

import torch

from n3cli.engine.runner import model_input
from n3cli.models.config import N3NetConfig
from n3cli.train.config import TaskConfig
from n3cli.train.tasks import BlindGaussTask, GaussTask


def test_blind_task_appends_the_noise_level_map():
    task = BlindGaussTask(TaskConfig(kind="blind-gauss", sigma_range=(0.0, 75.0)))
    clean = torch.full((16, 1, 64, 64), 0.5)
    inp, target = task.make_batch(clean, torch.Generator().manual_seed(0))
    assert inp.shape == (16, 2, 64, 64) and target is clean
    level = inp[:, 1]
    assert torch.all(level == level[:, :1, :1])  # constant per sample
    assert level.min() >= 0 and level.max() <= 75 / 255 and level.std() > 0.05
    noise_std = (inp[:, 0] - clean[:, 0]).flatten(1).std(dim=1)
    assert torch.allclose(noise_std, level[:, 0, 0], rtol=0.06, atol=2e-3)


def test_blind_task_matches_the_engine_input_layout():
    task = BlindGaussTask(TaskConfig(kind="blind-gauss", sigma_range=(0.0, 75.0)))
    cfg = N3NetConfig(image_channels=3, in_channels=4, out_channels=3)
    desc = task.descriptor(cfg)
    assert desc.noise_map and desc.sigma_range == (0.0, 75.0) and desc.image_channels == 3
    clean = torch.rand(1, 3, 20, 20)
    ours = task.make_input(clean, 30.0, torch.Generator().manual_seed(1))
    engine = model_input(ours[:, :3], desc, 30.0)
    assert torch.equal(ours, engine)


def test_gauss_task_fixed_sigma():
    task = GaussTask(TaskConfig(kind="gauss", sigma=50))
    clean = torch.full((8, 1, 64, 64), 0.5)
    inp, target = task.make_batch(clean, torch.Generator().manual_seed(0))
    assert inp.shape == clean.shape
    assert abs((inp - clean).std().item() - 50 / 255) < 0.005
    desc = task.descriptor(N3NetConfig())
    assert desc.sigma == 50 and not desc.noise_map
