"""Tasks: what the network sees (noise, noise-level map) and the descriptor it exports."""

from __future__ import annotations

import torch

from n3cli.engine.runner import model_input, sigma_conditions
from n3cli.models.config import N3NetConfig
from n3cli.train.config import TaskConfig
from n3cli.models.sr import N3NetSR, SRConfig
from n3cli.train.tasks import BlindGaussTask, GaussTask, SRTask, downscale, mod_crop


def test_blind_task_appends_the_noise_level_map():
    task = BlindGaussTask(TaskConfig(kind="blind-gauss", sigma_range=(0.0, 75.0)))
    clean = torch.full((16, 1, 64, 64), 0.5)
    inp, target, level = task.make_batch(clean, torch.Generator().manual_seed(0))
    assert inp.shape == (16, 2, 64, 64) and target is clean and level is None
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
    ours, target = task.make_case(clean, 30.0, torch.Generator().manual_seed(1))
    assert target is clean
    engine = model_input(ours[:, :3], desc, sigma_conditions(30.0))
    assert torch.equal(ours, engine)


def test_gauss_task_fixed_sigma():
    task = GaussTask(TaskConfig(kind="gauss", sigma=50))
    clean = torch.full((8, 1, 64, 64), 0.5)
    inp, target, level = task.make_batch(clean, torch.Generator().manual_seed(0))
    assert inp.shape == clean.shape and level == 50
    assert abs((inp - clean).std().item() - 50 / 255) < 0.005
    desc = task.descriptor(N3NetConfig())
    assert desc.sigma == 50 and not desc.noise_map


def test_sr_task_makes_bicubic_lr_of_one_scale_per_batch():
    task = SRTask(TaskConfig(kind="sr", scales=(2, 3, 4)))
    clean = torch.rand(4, 1, 48, 48)
    seen = set()
    for seed in range(12):
        inp, target, scale = task.make_batch(clean, torch.Generator().manual_seed(seed))
        seen.add(scale)
        assert target.shape == (4, 1, 48 - 48 % scale, 48 - 48 % scale)
        assert inp.shape == (4, 1, 48 // scale, 48 // scale)
        assert torch.equal(inp, torch.round(inp * 255) / 255)  # 8-bit, like an LR file
    assert seen == {2, 3, 4}
    # A constant image stays constant through the antialiased bicubic (weights sum to 1).
    flat = torch.full((1, 1, 30, 30), 100 / 255)
    assert torch.allclose(downscale(flat, 3), flat[..., :10, :10], atol=1e-6)
    assert mod_crop(torch.zeros(1, 1, 31, 29), 4).shape == (1, 1, 28, 28)


def test_sr_task_runs_the_model_at_the_batch_scale():
    task = SRTask(TaskConfig(kind="sr", scales=(2, 3)))
    net = N3NetSR(SRConfig(scales=(2, 3), layout="lr", features=8, depth=3, embed_features=8, k=2,
                           window=3, tail_channels=4))
    inp, target = task.make_case(torch.rand(1, 1, 36, 36), 3, torch.Generator())
    assert task.run(net, inp, 3).shape == target.shape == (1, 1, 36, 36)
    desc = task.descriptor(net.config)
    assert desc.task == "sr" and desc.scales == (2, 3) and desc.packing == "y" and desc.scale == 3
