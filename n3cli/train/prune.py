"""Make a narrower model from a trained one: fewer local-CNN features, refit by least squares.

A cheaper recipe (e.g. 40 instead of 64 features) trained from scratch on a CPU budget
lands well below the model it should replace; started from the trained model it does not
have to relearn what that model knows (docs/RESULTS.md, "Narrower SR models by pruning").
:func:`prune` builds the narrower network of a training config (the *student*) from a
trained model of the same architecture (the *teacher*), one convolution at a time, in the
order the data flows:

- each hidden layer keeps the teacher's channels that matter most downstream (RMS of the
  activation x norm of the next convolution's weights on it);
- each convolution of the student is the least-squares fit (ridge-regularised, bias
  included) of the teacher's pre-activations on those kept channels, computed from the
  *student's* own inputs, so that the errors of earlier layers are corrected, not
  compounded;
- every other tensor whose shape did not change (N3 embedding and temperature CNNs,
  super-resolution tails) is copied.

Settings without weights (the N3 search window, k) may change too: the calibration runs the
student with them, so the refit adapts to them. The calibration inputs are training
batches of the config's own task and data. The result is an initialisation for
``n3 train --init``, not a finished model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from n3cli.data.degrade import crop_batch, to_float
from n3cli.data.folder import load_training_bank
from n3cli.errors import UsageError
from n3cli.io.atomic import writable_folder
from n3cli.models.arch import get_arch
from n3cli.models.blocks import LocalCNN
from n3cli.models.n3net import N3Net
from n3cli.train.config import TrainConfig
from n3cli.train.tasks import make_task
from n3cli.weights.store import build_verified, read_entry, save_model


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune` did: per local CNN, the relative RMS error of its output."""

    json_path: Path
    crops: int
    stage_errors: tuple[float, ...]


def _body(model: nn.Module, what: str) -> N3Net:
    bodies = [m for m in model.modules() if isinstance(m, N3Net)]
    if len(bodies) != 1:
        raise UsageError(f"the {what} has {len(bodies)} N3Net bodies; pruning needs exactly one")
    if bodies[0].config.batchnorm:
        raise UsageError(f"the {what} has BatchNorm layers: pruning refits plain convolutions only",
                         "prune a model without BatchNorm (e.g. the super-resolution family)")
    return bodies[0]


def _convs(block: LocalCNN) -> list[nn.Conv2d]:
    return [block.conv1, *(m for m in block.layer1 if isinstance(m, nn.Conv2d)), block.conv2]


def _channel_scores(act: list[torch.Tensor], next_weight: torch.Tensor) -> torch.Tensor:
    """How much each channel of ``act`` feeds the next convolution."""
    rms = torch.stack([a.pow(2).mean((0, 2, 3)) for a in act]).mean(0).sqrt()
    return rms * next_weight.pow(2).sum((0, 2, 3)).sqrt()


def _refit(conv: nn.Conv2d, inputs: list[torch.Tensor], targets: list[torch.Tensor],
           ridge: float) -> None:
    """Set ``conv`` (3x3, padding 1, bias) to the least-squares map inputs -> targets."""
    cin, cout = inputs[0].shape[1], targets[0].shape[1]
    a = torch.zeros(cin * 9 + 1, cin * 9 + 1, dtype=torch.float64)
    b = torch.zeros(cin * 9 + 1, cout, dtype=torch.float64)
    for x, t in zip(inputs, targets):
        for i in range(x.shape[0]):  # one crop at a time: bounded memory
            cols = F.unfold(x[i:i + 1].float(), 3, padding=1)[0].T.double()  # (pixels, cin*9)
            cols = torch.cat([cols, torch.ones(cols.shape[0], 1, dtype=cols.dtype)], 1)
            a += cols.T @ cols
            b += cols.T @ t[i].flatten(1).T.double()
    a += ridge * a.diagonal().mean() * torch.eye(a.shape[0], dtype=a.dtype)
    w = torch.linalg.solve(a, b)
    conv.weight.copy_(w[:-1].T.reshape(cout, cin, 3, 3).to(conv.weight.dtype))
    conv.bias.copy_(w[-1].to(conv.bias.dtype))


def _prune_block(teacher: LocalCNN, student: LocalCNN, xt: list[torch.Tensor],
                 xs: list[torch.Tensor], ridge: float) -> None:
    ct, cs = _convs(teacher), _convs(student)
    if len(ct) != len(cs):
        raise UsageError("the student's depth differs from the teacher's: only the width can change")
    ht, hs = xt, xs
    for i, (conv_t, conv_s) in enumerate(zip(ct, cs)):
        pre_t = [conv_t(h) for h in ht]
        if i == len(ct) - 1:
            _refit(conv_s, hs, pre_t, ridge)
            return
        ht = [p.relu() for p in pre_t]
        keep = torch.argsort(_channel_scores(ht, ct[i + 1].weight),
                             descending=True)[:conv_s.out_channels].sort().values
        _refit(conv_s, hs, [p[:, keep] for p in pre_t], ridge)
        hs = [conv_s(h).relu() for h in hs]


def prune(cfg: TrainConfig, teacher: Path, out: Path, crops: int = 48, seed: int = 0,
          ridge: float = 1e-3) -> PruneReport:
    """Write ``out/<cfg.name>.safetensors`` + ``.json``: the config's model, narrower than the
    trained ``teacher`` model (its .json or .safetensors, the two side by side), refit to it
    on ``crops`` training crops (see the module docstring). Raises ``UsageError`` when the
    two differ in more than width and weight-free settings."""
    if Path(teacher).suffix.lower() not in (".json", ".safetensors"):
        raise UsageError(f"--from {teacher}: not a model file",
                         "give a trained model's .json or .safetensors (n3 writes the two side by side)")
    entry = read_entry(Path(teacher).with_suffix(".json"), "file")
    if entry.spec.arch != cfg.arch:
        raise UsageError(f"the teacher is a '{entry.spec.arch}' model, the config builds '{cfg.arch}'")
    width = getattr(entry.spec.config, "features", None)
    if width is not None and not 1 <= getattr(cfg.model, "features", width) <= width:
        raise UsageError(f"model.features {cfg.model.features}: a pruned model is narrower than its teacher",
                         f"use 1 to {width} (the teacher's width)")
    if (Path(out) / f"{cfg.name}.json").exists():
        raise UsageError(f"{Path(out) / cfg.name}.json exists: pruning does not replace a model",
                         "choose another --out or remove it first")
    writable_folder(out, "--out")
    teacher = build_verified(entry)
    torch.manual_seed(cfg.seed)
    student = get_arch(cfg.arch).build(cfg.model).eval()
    body_t, body_s = _body(teacher, "teacher"), _body(student, "student")

    # Copy what keeps its shape; the local CNNs' convolutions are refit below.
    refit_ids = {id(p) for m in student.modules() if isinstance(m, LocalCNN)
                 for conv in _convs(m) for p in (conv.weight, conv.bias)}
    refit = {name for name, p in student.named_parameters() if id(p) in refit_ids}
    t_state, s_state = teacher.state_dict(), student.state_dict()
    for k, v in s_state.items():
        if k in refit:
            continue
        if k not in t_state or t_state[k].shape != v.shape:
            raise UsageError(f"'{k}' changes shape between teacher and student",
                             "only model.features (the local CNNs' width) may change")
        s_state[k] = t_state[k].clone()
    student.load_state_dict(s_state)

    # Calibration: the body's inputs on training batches of the config's task (the whole
    # teacher runs, so that any task's preprocessing reaches the body as in training).
    bank = load_training_bank([Path(p) for p in cfg.data.train], cfg.data.color, cfg.data.crop,
                              cfg.data.limit, cfg.data.holdout)
    task = make_task(cfg.task)
    gen = torch.Generator().manual_seed(seed)
    inputs: list[torch.Tensor] = []
    hook = body_t.register_forward_pre_hook(lambda mod, args: inputs.append(args[0]))
    with torch.no_grad():
        try:
            per_batch = min(cfg.optim.batch_size, crops)
            for start in range(0, crops, per_batch):
                n = min(per_batch, crops - start)
                idx = torch.randint(len(bank), (n,), generator=gen)
                clean = to_float(crop_batch(bank, idx, cfg.data.crop, gen, cfg.data.augment))
                inp, _, level = task.make_batch(clean, gen)
                task.run(teacher, inp, level)
        finally:
            hook.remove()

        errors = []
        yt, ys = inputs, inputs
        for i, (bt, bs) in enumerate(zip(body_t.blocks, body_s.blocks)):
            if i:
                yt = [body_t.nls[i - 1](y) for y in yt]
                ys = [body_s.nls[i - 1](y) for y in ys]
            _prune_block(bt, bs, yt, ys, ridge)
            yt, ys = [bt(y) for y in yt], [bs(y) for y in ys]
            num = sum(float((a - b).pow(2).sum()) for a, b in zip(yt, ys))
            den = sum(float(a.pow(2).sum()) for a in yt)
            errors.append((num / max(den, 1e-30)) ** 0.5)

    descriptor = task.descriptor(cfg.model)
    json_path = save_model(out, cfg.name, student, cfg.model, descriptor, summary=cfg.summary,
                           licence=cfg.licence, arch=cfg.arch,
                           extra={"pruned_from": {"model": entry.spec.name, "sha256": entry.meta["sha256"],
                                                  "crops": crops, "seed": seed}})
    return PruneReport(json_path, crops, tuple(errors))
