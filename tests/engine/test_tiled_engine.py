"""Tiled inference: exact tiles equal whole-image output, blend seams, OOM retry, budgets.

Runs on the device named by ``N3_TEST_DEVICE`` (default cpu).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from n3cli.engine import memory, precision, runner, tiling
from n3cli.errors import N3Error, UsageError
from n3cli.models import N3Net, N3NetConfig
from n3cli.models.registry import dependency_radius, descriptor_for

DEVICE = torch.device(os.environ.get("N3_TEST_DEVICE", "cpu"))
# Comparisons at 1e-5 need real fp32 on CUDA (cuDNN convolutions default to TF32).
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False

# Small networks with the two kernel paths' geometries and short halos.
SMALL = N3NetConfig(features=8, embed_features=8, depth=3, embed_depth=2, k=2,
                    patch=4, stride=2, window=5)
PAPER_GEOM = N3NetConfig(features=8, embed_features=8, depth=3, embed_depth=2, k=2, window=5)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and on a busy machine every small parallel
    op waits for a descheduled sibling thread: one thread keeps these tests fast."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _net(cfg: N3NetConfig, seed: int = 0) -> N3Net:
    torch.manual_seed(seed)
    return N3Net(cfg).to(DEVICE).eval()


def _fwd(net):
    return runner.make_forward(net, DEVICE)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 700), tile=st.integers(0, 300), ctx=st.integers(0, 200),
       q=st.sampled_from([1, 2, 5, 10]), min_len=st.sampled_from([1, 80]))
def test_plan_cores_partition_and_sources_align(n, tile, ctx, q, min_len):
    cores = tiling.axis_cores(n, tile, q)
    assert cores[0][0] == 0 and cores[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
    for s, e in cores:
        assert s % q == 0
        a, b = tiling.source_range(n, s, e, ctx, q, min_len)
        assert 0 <= a <= s and e <= b <= n
        assert a % q == 0 and (b - a) % q == n % q
        assert s - a >= min(ctx, s) - 0 and (b == n or b - e >= ctx)
        assert b - a >= min(min_len, n)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 900), tile=st.integers(16, 300), ctx=st.integers(0, 250),
       q=st.sampled_from([1, 2, 5, 10]), min_len=st.sampled_from([1, 80]))
def test_merged_cores_cost_no_memory_and_never_more_work(n, tile, ctx, q, min_len):
    """Joining cores keeps a partition and never asks for a longer source than the plan
    without joins did (the memory bound), while the summed source length can only drop."""
    cores = tiling.axis_cores(n, tile, q)
    merged = tiling.merge_cores(n, cores, ctx, q, min_len)
    assert merged[0][0] == 0 and merged[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(merged, merged[1:]))
    assert len(merged) <= len(cores)

    def lengths(cs):
        return [b - a for a, b in (tiling.source_range(n, s, e, ctx, q, min_len) for s, e in cs)]

    assert max(lengths(merged)) <= max(lengths(cores))
    assert sum(lengths(merged)) <= sum(lengths(cores))
    if all(length == n for length in lengths(cores)):  # every source is the whole axis
        assert merged == [(0, n)]


def test_a_context_wider_than_the_image_is_one_tile():
    assert len(tiling.plan_tiles(256, 300, 16, 205, 10, 80)) == 1
    # The edge cores share their source start, the middle ones do not.
    rows = tiling.merge_cores(1000, tiling.axis_cores(1000, 64, 10), 205, 10, 80)
    assert rows[0][1] > 64 and 2 < len(rows) < len(tiling.axis_cores(1000, 64, 10))


@pytest.mark.parametrize("cfg,size,tile", [
    (SMALL, (200, 230), 64), (SMALL, (151, 97), 48), (SMALL, (203, 233), 80),
    (PAPER_GEOM, (211, 433), 64), (PAPER_GEOM, (163, 247), 96),
])
def test_exact_tiles_equal_whole_image(cfg, size, tile):
    net = _net(cfg)
    x = torch.rand(1, 1, *size, generator=torch.Generator().manual_seed(1))
    halo = dependency_radius(cfg)
    with torch.inference_mode():
        whole = _fwd(net)(x)
        tiled = tiling.run_tiled(_fwd(net), x, tile, halo, "exact", cfg.stride, 4 * cfg.patch)
    assert len(tiling.plan_tiles(*size, tile, halo, cfg.stride)) > 1
    assert (tiled - whole).abs().max().item() <= 1e-5


def test_misaligned_tiles_are_not_exact():
    """The alignment rule matters: the same halo without grid alignment differs."""
    net = _net(SMALL)
    x = torch.rand(1, 1, 200, 230, generator=torch.Generator().manual_seed(1))
    halo = dependency_radius(SMALL)
    with torch.inference_mode():
        whole = _fwd(net)(x)
        shifted = tiling.run_tiled(_fwd(net), x, 67, halo + 1, "exact", 1, 20)  # starts at 67: odd
    assert (shifted - whole).abs().max().item() > 1e-4


def test_dependency_radius_bounds_the_measured_one():
    """Gradient support of border and centre pixels (reference kernel) stays in the halo."""
    cfg = N3NetConfig(features=4, embed_features=4, depth=3, embed_depth=2, k=2, window=7)
    net = N3Net(cfg).double().eval()
    net.set_n3_impl("reference")
    h, w = 260, 12
    x = torch.rand(1, 1, h, w, dtype=torch.float64, requires_grad=True)
    y = net(x)
    reach = 0
    for r in (0, 1, 3, h // 2, h - 2, h - 1):
        g = torch.autograd.grad(y[0, 0, r, w // 2], x, retain_graph=True)[0][0, 0]
        rows = (g.abs().sum(1) > 0).nonzero().flatten()
        reach = max(reach, rows.max().item() - r, r - rows.min().item())
    assert 0.6 * dependency_radius(cfg) <= reach <= dependency_radius(cfg)


def test_blend_seams_are_small_and_exact_far_from_edges():
    net = _net(SMALL)
    g = torch.Generator().manual_seed(2)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 180), torch.linspace(0, 1, 190), indexing="ij")
    x = (0.5 + 0.3 * torch.sin(6 * xx) * torch.cos(4 * yy) + 0.05 * torch.randn(180, 190, generator=g))
    x = x[None, None].float()
    with torch.inference_mode():
        whole = _fwd(net)(x)
        blend = tiling.run_tiled(_fwd(net), x, 48, 12, "blend", SMALL.stride, 20)
    diff = (blend - whole).abs()
    scale = whole.abs().max().item()
    assert diff.max().item() <= 0.05 * scale
    assert diff.mean().item() <= 2e-3 * scale
    assert diff.max().item() > 0  # the test can fail: blend is not exact


def test_simulated_oom_halves_the_tile_and_stays_exact():
    net = _net(SMALL)
    x = torch.rand(1, 1, 170, 150, generator=torch.Generator().manual_seed(3))
    halo = dependency_radius(SMALL)
    calls = []

    def fake(t: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(t.shape[-2:]))
        if t.shape[-2] * t.shape[-1] > 120 * 120:
            raise torch.cuda.OutOfMemoryError("simulated")
        return _fwd(net)(t)

    seen = []
    with torch.inference_mode():
        whole = _fwd(net)(x)
        out = tiling.run_tiled(fake, x, 0, halo, "exact", SMALL.stride, 20,
                               progress=lambda d, t: seen.append((d, t)))
    assert (out - whole).abs().max().item() <= 1e-5
    assert calls[0] == (170, 150) and len(calls) > 2
    assert seen[-1][0] == seen[-1][1] and seen[-1][1] > 1


def test_oom_on_the_smallest_tile_is_a_clean_error():
    def always(t):
        raise torch.cuda.OutOfMemoryError("simulated")

    with pytest.raises(N3Error):
        tiling.run_tiled(always, torch.zeros(1, 1, 64, 64), 32, 4, "exact", 2, 1)


def test_auto_tile_follows_the_memory_budget():
    desc = descriptor_for(PAPER_GEOM, sigma=25.0)
    bpp = memory.bytes_per_pixel(desc)
    big = runner.resolve_tiling(300, 300, desc, DEVICE, "auto", None, "exact", 1 << 34)
    assert big == (0, desc.halo, "exact")
    budget = memory.FIXED_OVERHEAD + 400 * 400 * bpp
    t, ctx, mode = runner.resolve_tiling(2000, 1500, desc, DEVICE, "auto", None, "exact", budget)
    assert mode == "exact" and ctx == desc.halo and t > 0 and t % PAPER_GEOM.stride == 0
    assert (t + 2 * ctx) ** 2 * bpp <= budget - memory.FIXED_OVERHEAD
    t2, ctx2, mode2 = runner.resolve_tiling(2000, 1500, desc, DEVICE, "auto", None, "auto",
                                            memory.FIXED_OVERHEAD + 150 * 150 * bpp)
    assert mode2 == "blend" and ctx2 == tiling.DEFAULT_BLEND_OVERLAP and t2 > 0
    with pytest.raises(UsageError):
        runner.resolve_tiling(500, 500, desc, DEVICE, 64, desc.halo - 1, "exact")
    with pytest.raises(UsageError, match="smallest tile"):
        runner.resolve_tiling(500, 500, desc, DEVICE, tiling.MIN_CORE - 1, None, "exact")
    assert runner.resolve_tiling(500, 500, desc, DEVICE, tiling.MIN_CORE, None, "exact")[0] == tiling.MIN_CORE


def test_denoise_image_tiled_equals_whole_and_reports_progress():
    net = _net(PAPER_GEOM)
    desc = descriptor_for(PAPER_GEOM, sigma=25.0)
    img = np.random.default_rng(0).random((170, 260, 1), dtype=np.float32)
    whole = runner.restore_image(net, desc, img, runner.sigma_conditions(25.0), DEVICE, tile=0)
    seen = []
    tiled = runner.restore_image(net, desc, img, runner.sigma_conditions(25.0), DEVICE, tile=64, mode="exact",
                                 progress=lambda d, t: seen.append((d, t)))
    assert tiled.shape == img.shape
    assert np.abs(tiled - whole).max() <= 1e-5
    assert seen[-1][0] == seen[-1][1] > 1
    assert all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))
    per_plane = seen[-1][1]
    # A gray model on a colour image runs three planes: one progress bar over all.
    seen.clear()
    rgb = np.repeat(img, 3, axis=2)
    runner.restore_image(net, desc, rgb, runner.sigma_conditions(25.0), DEVICE, tile=64, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3 * per_plane, 3 * per_plane)


def test_precision_choices():
    desc = descriptor_for(SMALL)
    assert precision.resolve_precision("fp32", DEVICE) == torch.float32
    with pytest.raises(UsageError):
        precision.resolve_precision("fp64", DEVICE)
    from dataclasses import replace
    with pytest.raises(UsageError):
        precision.resolve_precision("bf16", DEVICE, replace(desc, supports_half=False))
    dt = precision.resolve_precision("bf16", DEVICE, desc) if precision._probe(DEVICE, torch.bfloat16) else None
    if dt is not None:
        net = precision.cast_model(_net(SMALL), dt)
        assert all(m.weight.dtype == torch.float32 for m in net.modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
        x = torch.rand(1, 1, 96, 96, device=DEVICE)
        ref = _net(SMALL)
        with torch.inference_mode():
            diff = (net(x.to(dt)).float() - ref(x)).abs().max().item()
        assert diff < 0.05


def test_threads_option():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        precision.set_threads(1)
        assert torch.get_num_threads() == 1
        precision.set_threads(2)
        assert torch.get_num_threads() == 2
        with pytest.raises(UsageError):
            precision.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_estimate_seconds_grows_with_pixels_and_tiling():
    desc = descriptor_for(N3NetConfig())
    cpu = torch.device("cpu")
    a = runner.estimate_seconds(256, 256, desc, cpu)
    b = runner.estimate_seconds(1024, 1024, desc, cpu)
    c = runner.estimate_seconds(1024, 1024, desc, cpu, tile=256)
    assert 10 < b / a < 20 and c > 2 * b


def test_estimate_scales_with_the_models_multiply_adds():
    paper = N3NetConfig()
    light = N3NetConfig(in_channels=2, features=48, embed_features=32, unshuffle=2, window=7)
    cpu = torch.device("cpu")
    full = runner.estimate_seconds(512, 512, descriptor_for(paper), cpu)
    small = runner.estimate_seconds(512, 512, descriptor_for(light), cpu)
    assert 5 < full / small < 12  # the bundled-model recipe: ~8x fewer multiply-adds (descriptor)


def test_parse_size():
    assert memory.parse_size("2G") == 2 << 30
    assert memory.parse_size("512MiB") == 512 << 20
    assert memory.parse_size(1000) == 1000 and memory.parse_size(None) is None


def test_denoise_image_in_bfloat16_is_close_to_fp32():
    if not precision._probe(DEVICE, torch.bfloat16):
        pytest.skip("no bf16 on this device")
    desc = descriptor_for(SMALL, sigma=25.0)
    img = np.random.default_rng(1).random((90, 100, 1), dtype=np.float32)
    ref = runner.restore_image(_net(SMALL), desc, img, runner.sigma_conditions(25.0), DEVICE, tile=0)
    low = runner.restore_image(_net(SMALL), desc, img, runner.sigma_conditions(25.0), DEVICE, tile=48, precision="bf16")
    assert low.dtype == np.float32 and low.shape == img.shape
    assert 0 < np.abs(low - ref).max() < 0.05
