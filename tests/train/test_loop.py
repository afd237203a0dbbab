"""The training loop on CPU: learning, exact resumption, safe checkpoints, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from n3cli.cli.main import cli
from n3cli.errors import CheckpointError, UsageError
from n3cli.models import N3Net, N3NetConfig
from n3cli.train import TrainOptions, load_config, train
from n3cli.train.checkpoint import load_checkpoint
from train_helpers import REPO, make_images, write_config


def _run(cfg_path: Path, out: Path, sets=(), **kw):
    return train(load_config(cfg_path, list(sets)), TrainOptions(out=out, device="cpu", progress=False, **kw))


def _losses(out: Path) -> list[float]:
    recs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in recs if "loss" in r]


def test_loss_decreases_on_a_tiny_overfit(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=30, bn=0, log_every=5)
    _run(cfg, tmp_path / "run", ["schedule.lr_end=1e-3", "data.limit=1", "data.augment=\"none\"",
                                 "data.crop=32"])
    losses = _losses(tmp_path / "run")
    assert len(losses) == 6
    assert sum(losses[-2:]) / 2 < 0.6 * sum(losses[:2]) / 2, losses


def test_resume_after_max_steps_is_bit_exact(tmp_path, train_dir, val_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, val=val_dir, task="blind-gauss", steps=5, bn=2)
    full = _run(cfg, tmp_path / "a")
    assert full.steps_done == 7 and full.stopped == "" and "mean" in full.val
    part = _run(cfg, tmp_path / "b", max_steps=3)
    assert part.steps_done == 3 and part.stopped == "max-steps"
    assert (tmp_path / "b" / "tiny.safetensors").is_file()  # a safety stop still exports
    with pytest.raises(UsageError, match="already holds a run"):
        _run(cfg, tmp_path / "b")
    _run(cfg, tmp_path / "b", resume=True)
    # A finished run is not resumed: that rewrote its card and export from a run of no steps.
    card = (tmp_path / "b" / "tiny.md").read_text()
    with pytest.raises(UsageError, match="has finished"):
        _run(cfg, tmp_path / "b", resume=True)
    assert (tmp_path / "b" / "tiny.md").read_text() == card
    a, b = load_file(tmp_path / "a" / "tiny.safetensors"), load_file(tmp_path / "b" / "tiny.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    ca, cb = load_checkpoint(tmp_path / "a" / "checkpoint.safetensors"), load_checkpoint(tmp_path / "b" / "checkpoint.safetensors")
    for i, st in ca["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg_sq"], cb["optimizer"]["state"][i]["exp_avg_sq"])


def test_sigterm_checkpoints_and_resume_is_bit_exact(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=400, bn=0, log_every=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "n3cli.cli.train_cmd", "--config", str(cfg), "--device", "cpu", "-q"]
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "k")], env=env, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "k" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(_losses(tmp_path / "k")) >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # 128 + SIGTERM, as every command
    assert err.strip().startswith("n3: error: interrupted at step") and "Traceback" not in err
    stopped = load_checkpoint(tmp_path / "k" / "checkpoint.safetensors")["step"]
    assert 3 <= stopped < 400
    target = str(stopped + 2)
    subprocess.run(cmd + ["--out", str(tmp_path / "k"), "--resume", "--max-steps", target], env=env, check=True)
    subprocess.run(cmd + ["--out", str(tmp_path / "r"), "--max-steps", target], env=env, check=True)
    a = load_checkpoint(tmp_path / "k" / "checkpoint.safetensors")
    b = load_checkpoint(tmp_path / "r" / "checkpoint.safetensors")
    assert a["step"] == b["step"] == int(target)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_corrupt_and_foreign_checkpoints(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    _run(cfg, tmp_path / "run", max_steps=1)
    ck = tmp_path / "run" / "checkpoint.safetensors"
    good = ck.read_bytes()
    with pytest.raises(CheckpointError, match="another configuration"):
        _run(cfg, tmp_path / "run", ["task.sigma=50"], resume=True)
    ck.write_bytes(good[:-100] + bytes(b ^ 0xFF for b in good[-100:]))  # damaged tensor data
    with pytest.raises(CheckpointError, match="checksum"):
        _run(cfg, tmp_path / "run", resume=True)
    ck.write_bytes(good[: len(good) // 3])  # truncated
    res = CliRunner().invoke(cli, ["train", "--config", str(cfg), "--out", str(tmp_path / "run"),
                                   "--resume", "--device", "cpu", "-q"])
    assert res.exit_code == 1
    assert res.output.strip().startswith("n3: error: checkpoint") and "corrupt" in res.output
    assert len(res.output.strip().splitlines()) == 1
    with pytest.raises(UsageError, match="no checkpoint"):  # asking to resume nothing: exit 2
        _run(cfg, tmp_path / "fresh", resume=True)


def test_val_data_folder_is_refused_by_the_cli(tmp_path, train_dir):
    from train_helpers import make_images

    val = make_images(tmp_path / "BSDS500" / "val", count=1)
    cfg = write_config(tmp_path / "c.toml", train_dir)
    res = CliRunner().invoke(cli, ["train", "--config", str(cfg), "--data", str(val), "--out",
                                   str(tmp_path / "o"), "--device", "cpu"])
    assert res.exit_code == 2 and "test set" in res.output and "Traceback" not in res.output


def test_export_colour_blind_model_loads(tmp_path):
    from train_helpers import make_images

    data = make_images(tmp_path / "rgb", count=3, color=True)
    cfg = write_config(tmp_path / "c.toml", data, task="blind-gauss", color=True, steps=2, bn=1)
    res = _run(cfg, tmp_path / "run", export_to=tmp_path / "bundle")
    names = sorted(p.name for p in (tmp_path / "bundle").iterdir())
    assert names == ["tiny.json", "tiny.md", "tiny.safetensors"]
    meta = json.loads((tmp_path / "bundle" / "tiny.json").read_text())
    assert meta["descriptor"]["noise_map"] and meta["descriptor"]["image_channels"] == 3
    assert meta["config"]["in_channels"] == 4
    net = N3Net(N3NetConfig.from_dict(meta["config"]))
    net.load_state_dict(load_file(tmp_path / "bundle" / "tiny.safetensors"), strict=True)
    card = (tmp_path / "bundle" / "tiny.md").read_text()
    for part in ("## Training", "Steps: 3 of 3", "Wall time", "## Learning curve", "[model]"):
        assert part in card
    assert res.exported[0].parent == tmp_path / "run"


def test_paper_config_smoke(tmp_path, train_dir):
    """configs/paper-gauss-s25.toml, full architecture, 2 steps on a tiny data subset."""
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "--config", str(REPO / "configs/paper-gauss-s25.toml"),
                              "--data", str(train_dir), "--set", "validation.folder=\"\"",
                              "--set", "optim.batch_size=2", "--set", "data.crop=64",
                              "--max-steps", "2", "--out", str(tmp_path / "p"), "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "p" / "n3net-paper-s25-repro.json").read_text())
    assert meta["descriptor"]["sigma"] == 25 and meta["config"]["features"] == 64


def test_torchrun_two_processes(tmp_path, train_dir):
    """DDP on CPU (gloo): 2 ranks share each batch, rank 0 writes checkpoint and export."""
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=3, bn=1, log_every=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "n3cli.cli.train_cmd", "--config", str(cfg), "--out", str(tmp_path / "d"),
           "--device", "cpu", "-q"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    # The head holds what a failing rank printed, the tail torchrun's summary.
    assert proc.returncode == 0, proc.stderr[:2000] + "\n...\n" + proc.stderr[-1000:]
    recs = [json.loads(x) for x in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()]
    assert recs[0]["world"] == 2 and recs[-1]["event"] == "end" and recs[-1]["step"] == 4
    assert (tmp_path / "d" / "tiny.safetensors").is_file()
    assert load_checkpoint(tmp_path / "d" / "checkpoint.safetensors")["step"] == 4
    # The card's command names the launcher: the processes are part of how the run was made.
    assert "torchrun --nproc-per-node 2 --standalone -m n3cli train --config" in (tmp_path / "d" / "tiny.md").read_text()


def test_card_command_names_torchrun_only_under_it(monkeypatch):
    from n3cli.cli.train_cmd import command_line

    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert command_line(["--config", "a b.toml", "-q"]) == "n3 train --config 'a b.toml' -q"
    # A resumed run's card gives the command that starts it, not the one that continued it.
    assert command_line(["--config", "c.toml", "--out", "r", "--resume", "--reschedule"]) == \
        "n3 train --config c.toml --out r"
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert command_line(["--config", "c.toml"]) == \
        "torchrun --nproc-per-node 4 --nnodes 2 -m n3cli train --config c.toml"


def test_bf16_autocast_keeps_n3_in_float32(tmp_path, train_dir):
    """runtime.amp = bf16 (CPU autocast here): the N3 blocks run outside autocast."""
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    res = _run(cfg, tmp_path / "run", ["runtime.amp=\"bf16\""])
    assert res.steps_done == 2 and res.final_loss is not None and res.final_loss == res.final_loss
    from n3cli.models.blocks import N3Block
    from n3cli.train.loop import keep_n3_fp32

    net = N3Net(N3NetConfig(features=8, depth=3, embed_features=8, k=2))
    keep_n3_fp32(net)
    seen = []
    for m in net.modules():
        if isinstance(m, N3Block):
            m.embedcnn.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(torch.rand(1, 1, 40, 40)).float().sum().backward()
    assert seen == [torch.float32, torch.float32]


def test_bf16_trains_in_autocast_and_measures_statistics_in_float32(tmp_path, train_dir, val_dir, monkeypatch):
    """With runtime.amp = bf16 the gradient steps run under autocast, but the BatchNorm
    phase and the validation calibration measure statistics in float32: they are the
    statistics of the exported weights, which run in float32."""
    from n3cli.train.tasks import BlindGaussTask

    seen: list[tuple[bool, bool]] = []
    run = BlindGaussTask.run

    def spy(self, net, inp, level):
        seen.append((torch.is_grad_enabled(), torch.is_autocast_enabled("cpu")))
        return run(self, net, inp, level)

    monkeypatch.setattr(BlindGaussTask, "run", spy)
    cfg = write_config(tmp_path / "c.toml", train_dir, val=val_dir, task="blind-gauss", steps=5, bn=2)
    _run(cfg, tmp_path / "run", ["runtime.amp=\"bf16\"", "validation.every_steps=2",
                                 "validation.bn_batches=2"])
    grad_steps = [amp for grad, amp in seen if grad]
    statistics = [amp for grad, amp in seen if not grad]
    assert len(grad_steps) == 5 and all(grad_steps)
    assert len(statistics) >= 2 + 2 and not any(statistics)


def test_amp_auto_is_bf16_only_on_a_cpu_with_native_bf16(tmp_path, train_dir, monkeypatch):
    """runtime.amp = auto: bf16 autocast where the CPU does bf16 in hardware, float32 where
    oneDNN would emulate it (slower than float32); the log and the card say which."""
    from n3cli.engine import precision

    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    for native, want in ((True, "bf16"), (False, "none")):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
        out = tmp_path / f"run-{native}"
        _run(cfg, out, ["runtime.amp=\"auto\""])
        start = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
        assert start["event"] == "start" and start["autocast"] == want
        assert ("bf16 autocast" in (out / "tiny.md").read_text()) == native
    assert precision.resolve_autocast("auto", torch.device("cuda")) == "none"
    assert precision.resolve_autocast("bf16", torch.device("cpu")) == "bf16"


def test_holdout_validates_on_images_kept_out_of_training(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    res = _run(cfg, tmp_path / "run", ["data.holdout=2", "validation.folder=\"\"", "validation.images=2"])
    assert "mean" in res.val
    card = (tmp_path / "run" / "tiny.md").read_text()
    assert "2 images of the training folders held out of training (data.holdout)" in card
    assert "not a test set" in card and "possibly test images" not in card


def test_validation_on_a_named_validation_set(tmp_path, train_dir, monkeypatch):
    # val32's layout in a scratch data root: BSDS500 val less the CBSD68 test images.
    root = tmp_path / "data"
    make_images(root / "BSDS500/data/images/val", count=3, seed=7)
    for p in (root / "BSDS500/data/images/val").glob("*.png"):
        p.rename(p.with_suffix(".jpg"))  # PIL reads by content; val32 lists *.jpg
    (root / "CBSD68").mkdir()
    (root / "BSDS500/data/images/val/img00.jpg").replace(root / "CBSD68/img00.png")  # a test image
    monkeypatch.setenv("N3_DATA", str(root))
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    res = _run(cfg, tmp_path / "run", ["validation.folder=\"\"", "validation.dataset=\"val32\"",
                                       "validation.images=5"])
    assert "mean" in res.val
    card = (tmp_path / "run" / "tiny.md").read_text()
    assert "2 images of val32 (BSDS500 val less the test images)" in card  # img00 is left out
    assert "not a test set" in card and "possibly test images" not in card


def test_val_option_replaces_a_named_validation_set(tmp_path, train_dir, val_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=1, bn=0)
    res = CliRunner().invoke(cli, ["train", "--config", str(cfg), "--set", "validation.dataset=\"val32\"",
                                   "--val", str(val_dir), "--out", str(tmp_path / "r"), "--device", "cpu", "-q"])
    assert res.exit_code == 0, res.output
    card = (tmp_path / "r" / "tiny.md").read_text()
    head = card.split("## Configuration")[0]
    assert "PSNR (dB, unclipped float output) on 1 images of " in head and "val32" not in head
    # a user's folder may or may not be a test set: the card claims neither
    assert "possibly test images" in head and "These are test images" not in head


def test_reschedule_resumes_with_a_new_schedule_only(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=5, bn=0)
    _run(cfg, tmp_path / "run", max_steps=3)
    with pytest.raises(CheckpointError, match="another configuration"):
        _run(cfg, tmp_path / "run", ["schedule.steps=7"], resume=True)
    with pytest.raises(CheckpointError, match="another configuration"):  # only the schedule may change
        _run(cfg, tmp_path / "run", ["schedule.steps=7", "optim.lr=0.5"], resume=True, reschedule=True)
    res = _run(cfg, tmp_path / "run", ["schedule.steps=7"], resume=True, reschedule=True)
    assert res.steps_done == 7 and res.total_steps == 7
    events = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "resume" and e.get("rescheduled") for e in events)


def test_reschedule_needs_resume(tmp_path, train_dir, run):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    res = run("train", "--config", cfg, "--out", tmp_path / "r", "--reschedule")
    assert res.exit_code == 2 and "add --resume" in res.output


def test_channels_last_training_follows_the_same_trajectory(tmp_path, train_dir):
    """runtime.channels_last (faster on an H200, docs/PERFORMANCE.md) must learn the same
    thing: same batches, same losses and the same weights and BatchNorm statistics after a
    few steps up to float rounding, BatchNorm phase and EMA included."""
    cfg = write_config(tmp_path / "c.toml", train_dir, task="blind-gauss", steps=6, bn=2, log_every=1)
    sets = ["optim.ema=0.9", "model.features=12"]
    _run(cfg, tmp_path / "a", sets)
    _run(cfg, tmp_path / "b", sets + ["runtime.channels_last=true"])
    la, lb = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert len(la) == 8 and la == pytest.approx(lb, rel=1e-4)
    a, b = load_file(tmp_path / "a" / "tiny.safetensors"), load_file(tmp_path / "b" / "tiny.safetensors")
    assert a.keys() == b.keys()
    # Two biases have a zero gradient in exact arithmetic: the distance BatchNorm's (a shift
    # of every logit of a row by bias / T, which the softmax ignores) and the embedding's
    # last one (a constant added to every embedding, which no distance sees). Adam moves a
    # weight by about lr whatever the size of its gradient, so the two layouts' rounding
    # steps these either way; they are left out. Elsewhere a rounding-level gradient is
    # rare: all but 1 % of the elements of every other tensor must agree.
    last_embed = {}
    for k in a:
        if ".embedcnn." in k:
            block, idx = k.split(".embedcnn.")[0], int(k.split(".embedcnn.")[1].split(".")[0])
            last_embed[block] = max(last_embed.get(block, 0), idx)
    invariant = {f"{blk}.embedcnn.{i}.bias" for blk, i in last_embed.items()}
    invariant |= {k for k in a if k.endswith("dist_bn.bias")}
    assert len(invariant) == 4 and invariant <= a.keys()  # two N3 blocks
    for k in sorted(a.keys() - invariant):
        off = ((a[k].double() - b[k].double()).abs() > 1e-5 + 1e-4 * a[k].double().abs()).double().mean().item()
        assert off <= 0.01, (k, off)


def test_bn_batches_calibrates_validation_and_an_early_export_only(tmp_path, train_dir, val_dir):
    """validation.bn_batches: monitoring and an export before the BatchNorm phase use
    statistics measured afresh; the training itself is untouched, bf16 autocast too."""
    cfg = write_config(tmp_path / "c.toml", train_dir, val=val_dir, task="blind-gauss", steps=6, bn=2,
                       log_every=1)
    sets = ["validation.every_steps=2", "model.bn_momentum=0.001"]
    for amp in ("none", "bf16"):
        a, b = tmp_path / f"a-{amp}", tmp_path / f"b-{amp}"
        sa = sets + [f"runtime.amp=\"{amp}\""]
        plain = _run(cfg, a, sa, max_steps=5)
        calib = _run(cfg, b, sa + ["validation.bn_batches=3"], max_steps=5)
        assert _losses(a) == _losses(b), amp  # the same trajectory
        ca = load_checkpoint(a / "checkpoint.safetensors")["model"]
        cb = load_checkpoint(b / "checkpoint.safetensors")["model"]
        assert all(torch.equal(ca[k], cb[k]) for k in ca), amp  # live statistics untouched
        ea, eb = load_file(a / "tiny.safetensors"), load_file(b / "tiny.safetensors")
        stats = [k for k in ea if k.endswith("running_var")]
        assert stats and all(torch.equal(ea[k], ca[k]) for k in stats)  # off: the live statistics
        # Measured afresh over 3 batches (momentum None: their exact average), far from the
        # live ones that moved 0.1 % per step away from 1 (statistics of BatchNorms the
        # model does not run stay at 1 in both). The N3 blocks' distance BatchNorms too:
        # they were measured, not left at their reset values.
        used = [k for k in stats if not torch.equal(cb[k], torch.ones_like(cb[k])) and ".dist_bn." not in k]
        assert len(used) >= 8 and all(not torch.allclose(eb[k], cb[k], rtol=0.05) for k in used), amp
        dist = [k for k in eb if ".dist_bn.running_mean" in k]
        assert len(dist) == 2 and all(eb[k].abs().item() > 0 for k in dist), amp
        assert plain.val != calib.val
    # A finished run exports the statistics of its BatchNorm phase, calibration or not ...
    done = _run(cfg, tmp_path / "c", sets + ["validation.bn_batches=3"])
    ec, cc = load_file(tmp_path / "c" / "tiny.safetensors"), load_checkpoint(tmp_path / "c" / "checkpoint.safetensors")["model"]
    assert done.stopped == "" and all(torch.equal(ec[k], cc[k]) for k in stats)
    # ... and a run without one exports freshly measured statistics.
    cfg0 = write_config(tmp_path / "c0.toml", train_dir, val=val_dir, task="blind-gauss", steps=4, bn=0)
    _run(cfg0, tmp_path / "d", sets + ["validation.bn_batches=3"])
    ed, cd = load_file(tmp_path / "d" / "tiny.safetensors"), load_checkpoint(tmp_path / "d" / "checkpoint.safetensors")["model"]
    assert not all(torch.equal(ed[k], cd[k]) for k in stats)
    with pytest.raises(UsageError, match="bn_batches"):
        load_config(cfg, ["validation.bn_batches=-1"])


def test_unwritable_out_and_export_folders_fail_before_training(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    (tmp_path / "afile").write_text("x")
    for kw, what in ((dict(out=tmp_path / "afile" / "sub"), "--out"),
                     (dict(out=tmp_path / "ok", export_to=tmp_path / "afile" / "w"), "--export-to")):
        opts = {"out": kw.pop("out"), **kw}
        with pytest.raises(UsageError, match=f"{what} .* is not a writable folder"):
            train(load_config(cfg), TrainOptions(device="cpu", progress=False, **opts))
        assert not (tmp_path / "ok" / "tiny.safetensors").exists()  # nothing trained


def test_a_run_that_never_starts_leaves_no_folders(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    bad = tmp_path / "bad"
    make_images(bad, count=1)
    (bad / "broken.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match="cannot read validation image .*broken.png"):
        _run(cfg, tmp_path / "out", [f'validation.folder="{bad}"', "validation.images=2"],
             export_to=tmp_path / "exp")
    assert not (tmp_path / "out").exists() and not (tmp_path / "exp").exists()
    (tmp_path / "kept").mkdir()  # a folder the user made stays, even empty
    with pytest.raises(UsageError):
        _run(cfg, tmp_path / "kept", [f'validation.folder="{bad}"', "validation.images=2"])
    assert (tmp_path / "kept").is_dir()


def test_checkpoints_get_an_outputs_usual_permissions(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=2, bn=0)
    _run(cfg, tmp_path / "run")
    umask = os.umask(0)
    os.umask(umask)
    ckpt_mode = (tmp_path / "run" / "checkpoint.safetensors").stat().st_mode & 0o777
    assert ckpt_mode == 0o666 & ~umask == (tmp_path / "run" / "tiny.safetensors").stat().st_mode & 0o777


def test_psnr_loss_is_minus_the_mean_psnr_and_weights_samples_by_their_error():
    from n3cli.train.config import OptimConfig
    from n3cli.train.loop import loss_description, training_loss

    target = torch.zeros(2, 1, 8, 8)
    out = torch.ones(2, 1, 8, 8)
    out[0] *= 0.1  # MSE 1e-2: 20 dB
    out[1] *= 0.01  # MSE 1e-4: 40 dB
    optim = OptimConfig(loss="psnr", loss_scale=1.0)
    out.requires_grad_(True)
    loss = training_loss(optim, out, target)
    assert abs(loss.item() - (-30.0)) < 0.03  # minus the mean PSNR (the 1e-6 floor costs 0.04 dB at 40)
    loss.backward()
    # d/dout of 10 log10(mean e^2) = 20 e / (ln 10 N MSE): 10x smaller error, 10x the push
    # per pixel, where the squared error would give it 10x less.
    g = out.grad.abs()
    assert 9.0 < (g[1].mean() / g[0].mean()).item() < 10.1
    sse = training_loss(OptimConfig(loss="sse", loss_scale=1.0), out.detach().requires_grad_(True), target)
    assert abs(sse.item() - 64 * (1e-2 + 1e-4) / 2) < 1e-4
    assert "10 log10(MSE" in loss_description(optim) and "SSE" in loss_description(OptimConfig())


def test_psnr_loss_trains(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=30, bn=0, log_every=5)
    _run(cfg, tmp_path / "run", ["schedule.lr_end=1e-3", "data.limit=1", "data.augment=\"none\"",
                                 "data.crop=32", "optim.loss=\"psnr\"", "optim.loss_scale=1.0"])
    losses = _losses(tmp_path / "run")
    assert losses[-1] < losses[0] - 1.0, losses  # at least 1 dB better on the training crops
    cards = list((tmp_path / "run").rglob("*.md"))
    assert cards and all("10 log10(MSE + 1e-06)" in c.read_text() for c in cards), cards


def test_resume_with_max_steps_already_reached_is_refused_and_keeps_the_card(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=4, bn=0)
    _run(cfg, tmp_path / "run", max_steps=3)
    card = (tmp_path / "run" / "tiny.md").read_text()
    # No step to do: it rewrote the card with "Final training loss: n/a", "Throughput: n/a".
    for n in (2, 3):
        with pytest.raises(UsageError, match="at step 3 already.*larger --max-steps"):
            _run(cfg, tmp_path / "run", resume=True, max_steps=n)
    assert (tmp_path / "run" / "tiny.md").read_text() == card
    assert _run(cfg, tmp_path / "run", resume=True, max_steps=4).steps_done == 4


def test_validation_images_too_small_for_the_patch(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=1, bn=0)
    small = make_images(tmp_path / "small", count=1, size=(6, 6))
    # All of them: an error before training, not a run without the monitoring asked for.
    with pytest.raises(UsageError, match="no validation image of .*small is 10px"):
        _run(cfg, tmp_path / "a", [f'validation.folder="{small}"'])
    with pytest.raises(UsageError, match="no validation image"):
        _run(cfg, tmp_path / "b", [f'validation.folder="{train_dir}"', "validation.crop=4"])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # Some of them: the card counts the images measured, not those listed.
    make_images(tmp_path / "small", count=1, size=(40, 40), seed=3).joinpath("img00.png").rename(
        tmp_path / "small" / "big.png")
    res = _run(cfg, tmp_path / "c", [f'validation.folder="{small}"', "validation.images=2"])
    assert "mean" in res.val
    assert "on 1 images of " in (tmp_path / "c" / "tiny.md").read_text()


def test_a_fresh_run_refuses_an_out_holding_a_model_of_its_name(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=1, bn=0)
    _run(cfg, tmp_path / "run")
    (tmp_path / "run" / "checkpoint.safetensors").unlink()  # e.g. removed to save space
    model = (tmp_path / "run" / "tiny.safetensors").read_bytes()
    with pytest.raises(UsageError, match="already holds a model tiny.safetensors"):
        _run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "tiny.safetensors").read_bytes() == model
    _run(cfg, tmp_path / "run", ["name=other"])  # another name replaces nothing


def test_reschedule_refuses_a_schedule_ending_before_the_step_reached(tmp_path, train_dir):
    # The BatchNorm phase would start past its first step, which copies the EMA in: the
    # export would be the raw weights.
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=6, bn=2)
    _run(cfg, tmp_path / "run", ["optim.ema=0.9"], max_steps=4)
    with pytest.raises(UsageError, match="at step 4, past the 3 gradient steps"):
        _run(cfg, tmp_path / "run", ["optim.ema=0.9", "schedule.steps=3"], resume=True, reschedule=True)
    res = _run(cfg, tmp_path / "run", ["optim.ema=0.9", "schedule.steps=4"], resume=True, reschedule=True)
    assert res.steps_done == 6 and res.stopped == ""


def test_a_changed_schedule_alone_points_to_reschedule(tmp_path, train_dir):
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=3, bn=0)
    _run(cfg, tmp_path / "run", max_steps=1)
    with pytest.raises(CheckpointError, match="add --reschedule"):
        _run(cfg, tmp_path / "run", ["schedule.steps=5"], resume=True)
    with pytest.raises(CheckpointError) as err:  # not when something else changed too
        _run(cfg, tmp_path / "run", ["schedule.steps=5", "seed=2"], resume=True)
    assert "--reschedule" not in str(err.value)


def test_card_names_the_starting_command_and_the_last_resume(tmp_path, train_dir):
    # A resume may drop --init (ignored there): the card must still name the recipe the
    # weights followed, and say how the run was last continued.
    cfg = write_config(tmp_path / "c.toml", train_dir, steps=4, bn=0)
    _run(cfg, tmp_path / "r", max_steps=2, command="n3 train --config c.toml --init w.safetensors --max-steps 2")
    _run(cfg, tmp_path / "r", resume=True, command="n3 train --config c.toml")
    head = (tmp_path / "r" / "tiny.md").read_text().split("## Validation")[0]
    assert "- Command: `n3 train --config c.toml --init w.safetensors --max-steps 2`" in head
    assert "- Last resumed with: `n3 train --config c.toml`" in head
    # an uninterrupted run has one command line
    _run(cfg, tmp_path / "r2", command="n3 train --config c.toml")
    assert "Last resumed with" not in (tmp_path / "r2" / "tiny.md").read_text()
