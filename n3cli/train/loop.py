"""The training loop of ``n3 train``.

One function, :func:`train`, runs a :class:`TrainConfig` to the end (or to a safety stop)
on CPU, CUDA or MPS, single-process or under ``torchrun``. Design choices, all for speed
on a GPU without giving up exact resumption:

- the training images live on the device as uint8; crops, augmentation and noise are made
  there in batch (:mod:`n3cli.data.degrade`), with no DataLoader and no host round trip;
- the loss is read back only every ``runtime.log_every`` steps (each read is a sync);
- every random draw of a step derives from (seed, step, rank), the learning rate is a
  function of the step, and model + optimiser state go into the checkpoint, so a resumed
  run continues exactly where the stopped one was.
"""

from __future__ import annotations

import copy
import json
import math
import os
import platform
import signal
import time
import types
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn as nn

from n3cli.data import testsets
from n3cli.data.degrade import crop_batch, to_float
from n3cli.data.folder import list_images, load_training_bank, load_validation_images, training_files
from n3cli.engine.device import huge_pages_for_tensors, keep_freed_host_memory, resolve_device
from n3cli.engine.precision import resolve_autocast
from n3cli.errors import CheckpointError, N3Error, UsageError
from n3cli.io.atomic import writable_folder
from n3cli.models.arch import get_arch
from n3cli.models.blocks import LocalCNN, N3Block
from n3cli.train import checkpoint as ckpt
from n3cli.train.config import OptimConfig, ScheduleConfig, TrainConfig, identity, to_toml, with_num_images
from n3cli.engine.distributed import DistInfo, init_distributed, shutdown
from n3cli.train.distributed import any_rank, mean_over_ranks
from n3cli.train.ema import WeightAverage, average_states
from n3cli.train.export import curve_summary, model_card, write_card
from n3cli.weights.store import save_model
from n3cli.train.progress import Reporter
from n3cli.train.sampler import EpochSampler, stream_seed
from n3cli.train.schedule import lr_at
from n3cli.train.tasks import make_task
from n3cli.train.validate import Validator

METRICS_NAME = "metrics.jsonl"


class TrainingInterrupted(N3Error):
    """SIGINT/SIGTERM/SIGHUP: the run checkpointed and stopped; ``--resume`` continues it.
    The exit code is 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), as in every command."""

    exit_code = 130

    def __init__(self, message: str, hint: str | None = None, signum: int = signal.SIGINT):
        super().__init__(message, hint)
        self.exit_code = 128 + int(signum)


@dataclass
class TrainOptions:
    out: Path
    resume: bool = False
    device: str = "auto"
    max_minutes: float | None = None
    max_steps: int | None = None  # stop once this many steps (in total) are done
    export_to: Path | None = None
    # Start from these weights (safetensors of the same architecture); several files: from
    # their average (a "model soup" of runs from one start; re-measure BatchNorm after it).
    init: Path | Sequence[Path] | None = None
    # With resume: accept a changed [schedule] (e.g. fewer steps to fit the time left); the
    # learning rate follows the new schedule from the step reached.
    reschedule: bool = False
    command: str = ""
    progress: bool = True


@dataclass
class TrainResult:
    run_dir: Path
    steps_done: int
    total_steps: int
    stopped: str  # "" (finished), "max-steps", "max-minutes"
    final_loss: float | None
    samples_per_s: float | None
    val: dict[str, float]
    wall_s: float
    exported: list[Path] = field(default_factory=list)


class _StopFlag:
    """Turns SIGINT/SIGTERM/SIGHUP (a closed terminal) into a flag the loop checks between
    steps, so that each ends with a checkpoint."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is None:  # Windows has no SIGHUP
                continue
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def setup_backends(device: torch.device, cfg: TrainConfig) -> None:
    """Fast math where it does not change what is learnt: TF32 convolutions, cuDNN autotuning;
    on the CPU, freed memory kept for the next step (``runtime.keep_host_memory``).

    TF32 for plain matmuls stays off unless asked for (runtime.tf32_matmul): the only
    matmuls are the N3 distance/aggregation GEMMs, which are cheap and whose expanded
    distance form |q|^2 + |c|^2 - 2 q.c loses too much with a 10-bit mantissa.
    """
    if device.type == "cpu" and cfg.runtime.keep_host_memory:
        keep_freed_host_memory()
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = bool(cfg.runtime.tf32_matmul)
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = not cfg.runtime.deterministic
    if cfg.runtime.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on every parameter except biases (the paper's choice)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    kw: dict[str, Any] = {}
    if device.type == "cuda" and not cfg.runtime.channels_last:
        # One kernel for all parameters. Not with channels-last weights: multi-tensor
        # kernels may walk raw storage, and a grad laid out unlike its parameter would be
        # applied to the wrong elements. (A channels-last run with fused Adam on an H200
        # diverged within 5 steps; this is the suspected cause, not a confirmed one.)
        kw["fused"] = True
    elif device.type == "cuda":
        kw["foreach"] = False
    return torch.optim.Adam(param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                            betas=tuple(cfg.optim.betas), **kw)


# Below this per-sample MSE (60 dB on [0, 1]) the "psnr" loss stops raising a sample's
# weight: a crop the network already gets almost exactly right should not dominate.
PSNR_LOSS_EPS = 1e-6


def training_loss(optim: OptimConfig, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The recipe's loss, in float32 whatever precision ``out`` was computed in."""
    err = out.float() - target
    if optim.loss == "l1":  # mean absolute error (the usual SR loss)
        return optim.loss_scale * err.abs().mean()
    if optim.loss == "psnr":
        # Mean over samples of 10 log10(MSE): the negative of the mean PSNR. Its gradient
        # weights each sample by 1 / its MSE, so a range of noise levels counts in dB, as
        # evaluations average it, instead of strong noise dominating the squared error.
        mse = err.pow(2).flatten(1).mean(1)
        return optim.loss_scale * 10.0 * torch.log10(mse + PSNR_LOSS_EPS).mean()
    # 0.125 * sum of squared errors per sample, averaged over the batch (paper).
    return optim.loss_scale * err.pow(2).sum() / out.shape[0]


def loss_description(optim: OptimConfig) -> str:
    """How a model card names the training loss."""
    if optim.loss == "l1":
        return f"{optim.loss_scale:g} x mean absolute error"
    if optim.loss == "psnr":
        return f"{optim.loss_scale:g} x mean of 10 log10(MSE + {PSNR_LOSS_EPS:g}) per sample"
    return f"{optim.loss_scale:g} x SSE per sample"


def _fp32_forward(block: N3Block, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        return type(block).forward(block, x.float())


def _validation_source(cfg: TrainConfig, folders: list[Path]) -> tuple[list[Path], str]:
    """The monitoring images and how the model card names them: a named validation set,
    a folder, or the images ``data.holdout`` keeps out of training."""
    v = cfg.validation
    if v.dataset:
        return (testsets.list_images(testsets.dataset_spec(v.dataset)),
                f"{v.dataset} (BSDS500 val less the test images)")
    if v.folder:
        return list_images(Path(v.folder)), _shown(v.folder)
    return (training_files(folders, cfg.data.limit, cfg.data.holdout)[1],
            "the training folders held out of training (data.holdout)")


def freeze_unapplied(model: nn.Module) -> None:
    """Turn off gradients for ``LocalCNN.bn1``: it exists only for checkpoint compatibility
    and is never applied, so no gradient ever reaches it (DDP would wait for one and fail)."""
    for m in model.modules():
        if isinstance(m, LocalCNN) and hasattr(m, "bn1"):
            m.bn1.requires_grad_(False)


def keep_n3_fp32(model: nn.Module) -> None:
    """Run every N3 block with autocast off (bf16 AMP: convolutions only).

    The kNN softmax and the distance GEMMs need float32; autocast would otherwise turn the
    GEMMs to bf16. Only the instances' ``forward`` is replaced: parameter names, and so
    checkpoints and exports, are unchanged. It is a method bound to the block, so that
    ``copy.deepcopy`` binds the copy's to the copied block (a closure would keep running
    the original block).
    """
    for module in model.modules():
        if isinstance(module, N3Block):
            module.forward = types.MethodType(_fp32_forward, module)


def _bn_modules(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _average_bn_exactly(model: nn.Module, reset: bool) -> None:
    """BatchNorm running statistics as the exact average of the batches seen from now on
    (momentum None uses the module's batch counter, so it is resumable), after a reset."""
    for m in _bn_modules(model):
        if reset:
            m.reset_running_stats()
        m.momentum = None


def _shown(path: str) -> str:
    """A data path as a card shows it: relative to the working directory, normalised."""
    try:
        return os.path.relpath(os.path.normpath(path))
    except ValueError:  # another drive (Windows)
        return os.path.normpath(path)


def _machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def train(cfg: TrainConfig, opts: TrainOptions) -> TrainResult:
    """Run (or resume) training; returns what was done. Errors are :class:`N3Error`."""
    # No huge pages (resolve_device would ask for them): with freed memory kept there are
    # no page faults left to save, and the heap grew by half (engine.device).
    huge_pages_for_tensors(enable=not cfg.runtime.keep_host_memory)
    device = resolve_device(opts.device)
    info, device = init_distributed(device)
    ok = False
    created = [p for p in (Path(opts.out), opts.export_to) if p is not None and not Path(p).exists()]
    try:
        try:
            run = _Run(cfg, opts, info, device)
        except BaseException:
            if info.is_main:  # a run that never started leaves no empty folders behind
                for folder in created:
                    _remove_if_empty(Path(folder))
            raise
        result = run.run()
        ok = True
        return result
    finally:
        shutdown(info, wait_for_all=ok)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when empty
    except OSError:
        pass


class _Run:
    def __init__(self, cfg: TrainConfig, opts: TrainOptions, info: DistInfo, device: torch.device):
        self.opts, self.info, self.device = opts, info, device
        self.out = Path(opts.out)
        self.ckpt_path = self.out / ckpt.CHECKPOINT_NAME
        if cfg.optim.batch_size % info.world:
            raise UsageError(f"optim.batch_size {cfg.optim.batch_size} is not divisible by the "
                             f"{info.world} processes")
        if not opts.resume and self.ckpt_path.exists():
            raise UsageError(f"{self.out} already holds a run",
                             "add --resume to continue it, or choose another --out")
        model_file = self.out / f"{cfg.name}.safetensors"
        if not opts.resume and model_file.exists():  # a run whose checkpoint was removed, n3 prune's output
            raise UsageError(f"{self.out} already holds a model {model_file.name}, which this run would replace",
                             "choose another --out (--export-to replaces a model on purpose)")
        if opts.resume and not self.ckpt_path.exists():
            raise UsageError(f"no checkpoint to resume in {self.out}", "run without --resume first")
        if info.is_main:  # before any work: not an OSError after hours of training
            for folder, what in ((self.out, "--out"), (opts.export_to, "--export-to")):
                if folder is not None:
                    writable_folder(folder, what)
        setup_backends(device, cfg)
        self.t0 = time.monotonic()
        folders = [Path(p) for p in cfg.data.train]
        bank = load_training_bank(folders, cfg.data.color, cfg.data.crop, cfg.data.limit, cfg.data.holdout)
        self.cfg = cfg = with_num_images(cfg, len(bank))
        self.bank = bank.to(device)
        self.task = make_task(cfg.task)
        self.local_batch = cfg.optim.batch_size // info.world
        torch.manual_seed(cfg.seed)
        self.model = get_arch(cfg.arch).build(cfg.model).to(device)
        if cfg.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        freeze_unapplied(self.model)
        inits = [opts.init] if isinstance(opts.init, (str, Path)) else list(opts.init or ())
        if inits and not opts.resume:
            self._init_from([Path(p) for p in inits])
        self.autocast = resolve_autocast(cfg.runtime.amp, device)  # "auto" decided here
        if self.autocast == "bf16":
            keep_n3_fp32(self.model)
        self.optimizer = make_optimizer(self.model, cfg, device)
        self.step = 0
        self.rollbacks = 0
        self._calibration: tuple[int, nn.Module] | None = None  # (step, calibrated copy)
        self.prev_elapsed = 0.0
        # The command that started the run: a resume may leave out --init (it is ignored
        # there), so the last command alone would name a recipe the weights did not follow.
        self.start_command = opts.command or "n3 train"
        self.history: dict[str, Any] = {"loss": [], "val": []}
        ema_state, ema_updates = None, 0
        if opts.resume:
            ema_state, ema_updates = self._load()
        self.ema = (WeightAverage(self.model, cfg.optim.ema, ema_state, ema_updates)
                    if cfg.optim.ema else None)
        self.net: nn.Module = self.model
        if info.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.runtime.compile:
            self.net = torch.compile(self.net)
        self.sampler = EpochSampler(len(bank), cfg.data.sweeps, cfg.seed, device)
        self.gen = torch.Generator(device=device)
        self.validator = None
        v = cfg.validation
        self.val_files, self.val_source = _validation_source(cfg, folders)
        if info.is_main and self.val_files and v.images > 0:
            imgs = load_validation_images(self.val_files, cfg.data.color, v.images, v.crop)
            self.validator = Validator(imgs, v.sigmas, self.task, min_size=cfg.model.patch)
            if not self.validator.images:  # hours of training without the monitoring asked for
                raise UsageError(f"no validation image of {self.val_source} is {cfg.model.patch}px or more "
                                 "on each side (the model's patch)",
                                 "use larger images or validation.crop, or validation.images = 0")
        self.amp = (torch.autocast(device.type, dtype=torch.bfloat16)
                    if self.autocast == "bf16" else nullcontext())

    # -- checkpoints ------------------------------------------------------------------
    def _load(self) -> tuple[dict[str, torch.Tensor] | None, int]:
        """Model, optimiser, RNG and history from the checkpoint; returns its (EMA, updates)."""
        state = ckpt.load_checkpoint(self.ckpt_path, identity(self.cfg),
                                     may_differ=("schedule",) if self.opts.reschedule else ())
        if self.opts.reschedule:
            self._check_reschedule(state["step"], state["identity"].get("schedule", {}))
        try:
            self.model.load_state_dict(state["model"], strict=True)
            opt = state["optimizer"]
            # Implementation switches (fused/foreach) belong to this machine, not the file.
            for saved, fresh in zip(opt["param_groups"], self.optimizer.param_groups):
                for k in ("fused", "foreach", "capturable"):
                    if k in fresh:
                        saved[k] = fresh[k]
            self.optimizer.load_state_dict(opt)
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"checkpoint {self.ckpt_path} does not fit this model",
                                  str(err).splitlines()[0][:120]) from None
        ckpt.rng_restore(state["rng_tensors"], state["rng_plain"])
        self.step = state["step"]
        extra = state["extra"]
        self.prev_elapsed = float(extra.get("elapsed_s", 0.0))
        self.start_command = str(extra.get("command", self.start_command))
        self.history = extra.get("history", self.history)
        return state["ema"], int(extra.get("ema_updates", 0))

    def _check_reschedule(self, step: int, saved: dict[str, Any]) -> None:
        """Refuse a new schedule whose gradient steps end before ``step``, the step reached,
        where the saved one had not: the BatchNorm phase would start past its first step,
        which copies the EMA into the model and resets the statistics (the export would be
        the raw weights, the statistics not re-measured)."""
        known = {f.name for f in fields(ScheduleConfig)}
        old = replace(self.cfg, schedule=ScheduleConfig(**{k: v for k, v in saved.items() if k in known}))
        if self.cfg.grad_steps < step <= old.grad_steps:
            raise UsageError(f"--reschedule: the run is at step {step:,}, past the {self.cfg.grad_steps:,} "
                             "gradient steps of the new schedule",
                             f"give the new schedule at least {step:,} gradient steps")

    def _init_from(self, paths: list[Path]) -> None:
        """Fine-tuning: load a trained model's weights (strict) before the first step; with
        several files, their mean (:func:`average_states`).

        A file that cannot be read or does not fit is the command line's fault (exit 2).
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from n3cli.errors import WeightsError
        from n3cli.weights.store import check_state_dict

        hint = "--init needs a .safetensors model of the same config"
        states = []
        for path in paths:
            try:
                state = load_file(str(path))
                check_state_dict(self.model, state, str(path))
            except (OSError, SafetensorError) as err:
                raise UsageError(f"cannot start from {path}: {str(err).splitlines()[0]}", hint) from None
            except WeightsError as err:
                raise UsageError(f"{path} does not match the config's architecture: {err.message}",
                                 hint) from None
            states.append(state)
        self.model.load_state_dict(average_states(states), strict=True)

    def _save(self) -> None:
        if not self.info.is_main:
            return
        ckpt.save_checkpoint(self.ckpt_path, model_state=self.model.state_dict(),
                             optimizer_state=self.optimizer.state_dict(), step=self.step,
                             identity=identity(self.cfg),
                             extra={"elapsed_s": self.elapsed(), "history": self.history,
                                    "command": self.start_command,
                                    **({"ema_updates": self.ema.updates} if self.ema else {})},
                             ema_state=self.ema.state_dict() if self.ema else None)

    def _final_weights(self):
        """The weights a run exports and validates: the EMA while gradient steps run.

        From the BatchNorm-only phase on, the model itself holds the average (copied in
        when the phase starts, see :meth:`_bn_step`).
        """
        if self.ema is None or self.step > self.cfg.grad_steps:
            return nullcontext(self.model)
        return self.ema.applied(self.model)

    def elapsed(self) -> float:
        return self.prev_elapsed + time.monotonic() - self.t0

    # -- metrics -----------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / METRICS_NAME, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _calibrated(self, model: nn.Module) -> nn.Module:
        """``model``, or (``validation.bn_batches`` > 0) a copy with BatchNorm statistics
        measured afresh, exactly averaged over that many training batches (the latest ones;
        the first ones before step ``bn_batches``), unless the run's own BatchNorm phase
        has begun (it measures them exactly for the final weights).

        The copy runs forward only, and ``_batch`` re-seeds its generator from the step,
        so training goes on exactly as without it (resumption stays bit-exact). Under
        torchrun, rank 0 measures on its own share of each batch.
        """
        n, cfg = self.cfg.validation.bn_batches, self.cfg
        in_bn_phase = cfg.schedule.bn_steps > 0 and self.step > cfg.grad_steps
        if n <= 0 or in_bn_phase or not _bn_modules(model):
            return model
        if self._calibration is not None and self._calibration[0] == self.step:
            return self._calibration[1]  # the end of a run validates, then exports
        net = copy.deepcopy(model).train()
        _average_bn_exactly(net, reset=True)
        first = max(0, self.step - n)
        # float32, as the exported weights run: statistics of bf16 activations would be
        # those of a slightly different network.
        with torch.no_grad():
            for s in range(first, first + n):
                inp, _, level = self._batch(s)
                self.task.run(net, inp, level)
        self._calibration = (self.step, net.eval())
        return net

    def _validate(self) -> dict[str, float]:
        if self.validator is None or not len(self.validator):
            return {}
        with self._final_weights() as model:
            res = self.validator.run(self._calibrated(model), self.device)
        self.history["val"].append([self.step, res.get("mean", float("nan"))])
        self._log({"step": self.step, "val_psnr": res, "elapsed_s": round(self.elapsed(), 2)})
        return res

    # -- one step ----------------------------------------------------------------------
    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, float | None]:
        cfg, b = self.cfg, self.local_batch
        idx = self.sampler.indices(step * cfg.optim.batch_size + self.info.rank * b, b)
        self.gen.manual_seed(stream_seed(cfg.seed, step, self.info.rank))
        clean = to_float(crop_batch(self.bank, idx, cfg.data.crop, self.gen, cfg.data.augment))
        inp, target, level = self.task.make_batch(clean, self.gen)
        if cfg.runtime.channels_last:
            inp = inp.contiguous(memory_format=torch.channels_last)
        return inp, target, level

    def _loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return training_loss(self.cfg.optim, out, target)

    def _train_step(self, lr: float) -> torch.Tensor:
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        inp, target, level = self._batch(self.step)
        with self.amp:
            out = self.task.run(self.net, inp, level)
        loss = self._loss(out, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach()

    @torch.no_grad()
    def _bn_step(self) -> torch.Tensor:
        """lr 0: parameters cannot move, only BatchNorm running statistics (forward only)."""
        if self.ema is not None and self.step == self.cfg.grad_steps:
            self.ema.copy_to(self.model)  # measure the statistics for the exported weights
        if self.cfg.schedule.bn_reset:  # exact average over the phase
            _average_bn_exactly(self.model, reset=self.step == self.cfg.grad_steps)
        inp, target, level = self._batch(self.step)
        # float32 like the calibration above: these statistics are the exported ones.
        out = self.task.run(self.model, inp, level)  # no DDP: no gradients, buffers per rank
        return self._loss(out, target)

    # -- divergence guard ----------------------------------------------------------------
    MAX_ROLLBACKS = 8

    def _snapshot(self) -> None:
        """Keep the last state with a finite loss (device copies, every log point)."""
        opt = self.optimizer.state_dict()
        self._snap = (
            {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            {"state": {i: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in st.items()}
                       for i, st in opt["state"].items()},
             "param_groups": copy.deepcopy(opt["param_groups"])},
            self.ema.clone_state() if self.ema else None)

    def _rollback(self, reporter: Reporter) -> bool:
        """A non-finite loss: go back to the last good state and go on with the next batches.

        All ranks see the same (all-reduced) loss, so they roll back together. Returns
        False once the run has diverged too often: the loop then stops with the last good
        state (checkpointed and exported, marked "diverged") rather than lose the run.
        """
        self.rollbacks += 1
        snap = self._snap
        self.model.load_state_dict(snap[0])
        self.optimizer.load_state_dict(snap[1])
        if self.ema is not None:
            self.ema.restore(snap[2])
        self._log({"event": "rollback", "step": self.step, "count": self.rollbacks})
        reporter.message(f"step {self.step}: non-finite loss, rolled back to the last good state "
                         f"({self.rollbacks}/{self.MAX_ROLLBACKS})")
        return self.rollbacks < self.MAX_ROLLBACKS

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg, opts, info = self.cfg, self.opts, self.info
        total = cfg.total_steps
        stop_at = total if opts.max_steps is None else min(total, opts.max_steps)
        deadline = None if opts.max_minutes is None else self.t0 + 60.0 * opts.max_minutes
        if opts.resume and self.step >= total:
            # Its card and export hold the finished run's figures: resuming would rewrite
            # them from a run of no steps.
            raise UsageError(f"the run in {self.out} has finished (step {self.step:,} of {total:,})",
                             "train more with --init its exported weights and a new --out, or "
                             "--resume --reschedule --set schedule.steps=N to lengthen it")
        if opts.resume and stop_at <= self.step:
            # Nothing to do, but the card would be rewritten without its loss and throughput.
            raise UsageError(f"the run in {self.out} is at step {self.step:,} already: "
                             f"--max-steps {stop_at:,} leaves nothing to train",
                             "give a larger --max-steps, or leave it out")
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.toml").write_text(to_toml(cfg))
            self._log({"event": "resume" if opts.resume else "start", "step": self.step,
                       **({"rescheduled": True} if opts.reschedule else {}), "total_steps": total, "world": info.world, "device": str(self.device),
                       "images": len(self.bank), "batch": cfg.optim.batch_size, "autocast": self.autocast,
                       "ready_s": round(time.monotonic() - self.t0, 2)})
        reporter = Reporter(cfg.name, total, self.step, enabled=info.is_main and opts.progress)
        reporter.set_batch(cfg.optim.batch_size)
        self.model.train()
        log_every = max(1, cfg.runtime.log_every)
        loss_sum = torch.zeros((), device=self.device)
        loss_n = 0
        last_loss: float | None = None
        t_log, s_log = time.monotonic(), self.step
        rates: list[float] = []
        last_ckpt_t = time.monotonic()
        stopped = ""
        val: dict[str, float] = {}
        self._snapshot()
        try:
            with _StopFlag() as flag:
                while self.step < stop_at:
                    lr = lr_at(cfg, self.step)
                    loss = self._train_step(lr) if self.step < cfg.grad_steps else self._bn_step()
                    loss_sum += loss
                    loss_n += 1
                    self.step += 1
                    late = deadline is not None and time.monotonic() > deadline
                    at_log = self.step % log_every == 0 or self.step == stop_at
                    if not info.enabled:  # alone: stop at once, logging the partial interval
                        at_log = at_log or late or flag.signal is not None
                    if at_log:
                        good_loss, last_loss = last_loss, float(mean_over_ranks(loss_sum / loss_n, info).item())
                        now = time.monotonic()
                        rate = (self.step - s_log) * cfg.optim.batch_size / max(now - t_log, 1e-9)
                        rates.append(rate)
                        t_log, s_log = now, self.step
                        loss_sum.zero_()
                        loss_n = 0
                        if not math.isfinite(last_loss):
                            last_loss = good_loss
                            if self._rollback(reporter):
                                continue
                            stopped = "diverged"
                            break
                        self._snapshot()
                        self.history["loss"].append([self.step, last_loss])
                        self._log({"step": self.step, "loss": last_loss, "lr": lr,
                                   "samples_per_s": round(rate, 2), "elapsed_s": round(self.elapsed(), 2)})
                        reporter.update(self.step, last_loss, lr, rate)
                    v = cfg.validation.every_steps
                    if info.is_main and v and self.step % v == 0 and self.step < stop_at:
                        res = self._validate()
                        if res:
                            reporter.message(f"step {self.step}: validation PSNR "
                                             + ", ".join(f"{k} {x:.2f}" for k, x in res.items()))
                    # Signals and the time limit differ between ranks: agree at log points.
                    if at_log:
                        if any_rank(flag.signal is not None, info, self.device):
                            self._save()
                            raise TrainingInterrupted(
                                f"interrupted at step {self.step} of {total}; checkpoint saved in {self.out}",
                                "continue with the same command plus --resume",
                                signum=flag.signal or signal.SIGINT)
                        if any_rank(late, info, self.device):
                            stopped = "max-minutes"
                            break
                    c = cfg.checkpoint
                    due = (c.every_steps and self.step % c.every_steps == 0) or (
                        c.every_minutes and time.monotonic() - last_ckpt_t > 60.0 * c.every_minutes)
                    if due and self.step < stop_at:
                        self._save()
                        last_ckpt_t = time.monotonic()
                if stopped == "diverged" and self.info.is_main:
                    reporter.message("training keeps diverging: stopping with the last good state")
                if not stopped and self.step < total:
                    stopped = "max-steps"
                self._save()
                val = self._validate() if info.is_main else {}
        finally:
            reporter.close()
        steady = rates[1:] or rates
        rate = float(sorted(steady)[len(steady) // 2]) if steady else None
        result = TrainResult(self.out, self.step, total, stopped, last_loss, rate, val, self.elapsed())
        if info.is_main:
            self._log({"event": "end", "step": self.step, "stopped": stopped, "val_psnr": val,
                       "samples_per_s": rate, "elapsed_s": round(self.elapsed(), 2)})
            result.exported = self._export(result)
        return result

    # -- export ------------------------------------------------------------------------
    def _resume_command(self) -> str:
        """The last command, when it differs from the one that started the run."""
        last = self.opts.command or "n3 train"
        return last if self.opts.resume and last != self.start_command else ""

    def _export(self, r: TrainResult) -> list[Path]:
        cfg = self.cfg
        self.model.eval()
        desc = self.task.descriptor(cfg.model)
        card = model_card(
            name=cfg.name, summary=cfg.summary, licence=cfg.licence, config_text=to_toml(cfg),
            command=self.start_command, resumed_with=self._resume_command(), steps_done=r.steps_done, total_steps=r.total_steps,
            data=f"{len(self.bank)} images from {', '.join(_shown(p) for p in cfg.data.train)} ({cfg.data.color}), "
                 f"{cfg.data.crop}x{cfg.data.crop} crops, augmentation {cfg.data.augment}",
            wall_s=r.wall_s, machine=_machine(self.device) + (f" x{self.info.world} processes"
                                                               if self.info.enabled else "")
            + (", bf16 autocast" if self.autocast == "bf16" else ""),
            samples_per_s=r.samples_per_s, final_loss=r.final_loss, val=r.val,
            val_folder=(f"{self.validator.images} images of {self.val_source}"
                        + (f" (centre {cfg.validation.crop}px)" if cfg.validation.crop else "")
                        if self.validator else ""),
            val_is_test=bool(cfg.validation.folder),
            curve=[tuple(x) for x in curve_summary(self.history["loss"])],
            val_curve=[tuple(x) for x in curve_summary(self.history["val"])],
            stopped_early=r.stopped,
            loss_name=loss_description(cfg.optim))
        extra = {"training": {"steps": r.steps_done, "total_steps": r.total_steps,
                              "stopped": r.stopped, "val_psnr": r.val, "final_loss": r.final_loss,
                              "wall_s": round(r.wall_s, 1),
                              **({"ema_decay": cfg.optim.ema} if self.ema else {})}}
        paths = []
        with self._final_weights() as model:
            final = self._calibrated(model).eval()
            for d in [self.out] + ([Path(self.opts.export_to)] if self.opts.export_to else []):
                d.mkdir(parents=True, exist_ok=True)
                js = save_model(d, cfg.name, final, cfg.model, desc, cfg.summary, cfg.licence, extra,
                                arch=cfg.arch)
                write_card(d / f"{cfg.name}.md", card)
                paths += [js.with_suffix(".safetensors"), js, d / f"{cfg.name}.md"]
        return paths
