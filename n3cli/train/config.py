"""Training configuration: one TOML file describes a whole run.

Sections: top-level ``name``/``summary``/``licence``/``seed``; ``[model]`` (``arch``,
default "n3net", and any field of that architecture's config, e.g. :class:`N3NetConfig`
or :class:`n3cli.models.sr.SRConfig`); ``[task]``; ``[data]``; ``[validation]``; ``[optim]``;
``[schedule]``; ``[checkpoint]``; ``[runtime]``. Relative paths in a file are resolved
against the file's folder; values given with ``--set section.key=value`` (TOML syntax)
override the file, and their paths are relative to the working directory.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from n3cli.data.pg_noise import LOG10_A_RANGE
from n3cli.data.testsets import VALIDATION_SETS
from n3cli.errors import UsageError
from n3cli.models.arch import DEFAULT_ARCH, get_arch


@dataclass(frozen=True)
class TaskConfig:
    kind: str = "gauss"  # gauss | blind-gauss | sr | raw-pg (Poisson-Gaussian, spec section 5)
    sigma: float = 25.0  # gauss: the fixed noise level (8-bit units)
    sigma_range: tuple[float, float] = (0.0, 75.0)  # blind-gauss: U(low, high) per sample
    # oversampled sub-range of the noise: blind-gauss in sigma (8-bit units), raw-pg in log10 a
    focus_range: tuple[float, float] | None = None
    focus_prob: float = 0.0  # probability of drawing from focus_range
    # gauss / blind-gauss: share of samples whose noisy input is clipped to [0, 1] and
    # rounded to 8 bits like a real file (0 = the paper's unclipped noise only)
    real_prob: float = 0.0
    scales: tuple[int, ...] = (2, 3, 4)  # sr: upscaling factors, one drawn per batch
    # raw-pg: share of samples given the paper's tone mapping x**g * s (the rest keep the
    # image's own levels, as the evaluation's test images do); 1 = the paper's synthesis
    tone_prob: float = 1.0


@dataclass(frozen=True)
class DataConfig:
    train: tuple[str, ...] = ()
    color: str = "gray"  # gray (paper formula) | rgb | y (BT.601 luminance, for sr)
    crop: int = 80
    augment: str = "vflip"  # none | vflip | dihedral
    sweeps: int = 128  # passes over the image list per epoch (paper: 128)
    limit: int = 0  # > 0: use only the first N images (smoke tests)
    holdout: int = 0  # > 0: keep N images out of training; validation uses them unless given a folder


@dataclass(frozen=True)
class ValidationConfig:
    folder: str = ""  # monitoring only (Set12 is a test set: never used for selection)
    # Or a named validation set, never a test set: val32 / cval32 (the BSDS500 val images
    # that BSD68 / CBSD68 leave out, the sets the bundled models are chosen on), read from
    # $N3_DATA or ../shared/datasets like `n3 eval --dataset`.
    dataset: str = ""
    images: int = 4
    crop: int = 0  # centre crop (0 = whole image)
    sigmas: tuple[float, ...] = (25.0,)  # the levels watched: sigmas, or scales for sr
    every_steps: int = 0  # 0 = only at the end
    # Validate and export a copy whose BatchNorm statistics are measured afresh on this many
    # recent training batches, except once the run's own BatchNorm phase has begun: the
    # live running statistics (momentum 0.001) lag fast-moving weights by thousands of
    # steps (most likely why a short GPU run's monitoring read ~19.6 dB until its BN
    # phase). 0 = off.
    bn_batches: int = 0


@dataclass(frozen=True)
class OptimConfig:
    batch_size: int = 32  # global batch (split over torchrun processes)
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4  # on all parameters except biases
    loss_scale: float = 0.125  # loss = scale * sum of squared errors per sample, batch mean
    # sse (the paper's, scaled as above) | l1 (mean absolute error x loss_scale) |
    # psnr (loss_scale x the mean over samples of 10 log10(MSE): each sample counts in dB,
    # for tasks whose noise spans decades, e.g. raw-pg)
    loss: str = "sse"
    # Decay of an exponential moving average of the weights, the model exported and
    # validated (0 = off, e.g. 0.999). It only watches training (train/ema.py), so it is
    # not part of a checkpoint's identity and may be turned on when resuming.
    ema: float = 0.0


@dataclass(frozen=True)
class ScheduleConfig:
    kind: str = "epoch-exp"  # epoch-exp (paper) | exp (per step, sized by `steps`)
    epochs: int = 51  # epoch-exp: epochs with gradient steps
    decades: float = 3.0  # epoch-exp: lr falls 10^decades over `decay_epochs`
    decay_epochs: int = 50
    steps: int = 0  # exp: gradient steps
    lr_end: float = 1e-6  # exp: lr at the last gradient step
    bn_epochs: int = 0  # epoch-exp: final epochs at lr 0 (only BN running stats move)
    bn_steps: int = 0  # exp: final steps at lr 0
    # Reset the BatchNorm running statistics when the lr-0 phase starts and average them
    # exactly over it (momentum None): a short phase then gives statistics that fit the
    # final weights, where the paper's momentum 0.001 needs thousands of steps.
    bn_reset: bool = False


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 0
    every_minutes: float = 10.0


@dataclass(frozen=True)
class RuntimeConfig:
    # none | bf16 autocast (N3 blocks stay fp32) | auto: bf16 on a CPU with native bf16, else none
    amp: str = "none"
    channels_last: bool = False
    log_every: int = 50  # steps between loss readbacks (each one is a host-device sync)
    deterministic: bool = False
    compile: bool = False  # torch.compile the model (CUDA)
    tf32_matmul: bool = False  # TF32 also for the N3 GEMMs (convolutions always use TF32)
    # CPU (Linux, glibc): keep freed memory for reuse instead of faulting every step's
    # activations in again: the paper-size step 1.32x faster, peak RSS +18 %
    # (engine.device.keep_freed_host_memory, docs/PERFORMANCE.md "Training step").
    keep_host_memory: bool = True


@dataclass(frozen=True)
class TrainConfig:
    name: str
    model: Any  # the config type of ``arch``
    task: TaskConfig = TaskConfig()
    data: DataConfig = DataConfig()
    validation: ValidationConfig = ValidationConfig()
    optim: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    summary: str = ""
    licence: str = ""
    seed: int = 0
    source: str = ""  # the config file it came from (for the model card)
    arch: str = DEFAULT_ARCH

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("arch")
        d["model"] = {"arch": self.arch, **self.model.to_dict()}
        return d

    # -- derived sizes --------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        """Paper epochs: ``sweeps`` passes over the images, one crop each, per batch."""
        return max(1, (self.num_images * self.data.sweeps) // self.optim.batch_size)

    num_images: int = 0  # filled in once the data is loaded (0 before)

    @property
    def grad_steps(self) -> int:
        s = self.schedule
        if s.kind == "exp":
            return s.steps
        return s.epochs * self.steps_per_epoch

    @property
    def bn_steps(self) -> int:
        s = self.schedule
        return s.bn_steps if s.kind == "exp" else s.bn_epochs * self.steps_per_epoch

    @property
    def total_steps(self) -> int:
        return self.grad_steps + self.bn_steps


_SECTIONS = {"task": TaskConfig, "data": DataConfig, "validation": ValidationConfig,
             "optim": OptimConfig, "schedule": ScheduleConfig, "checkpoint": CheckpointConfig,
             "runtime": RuntimeConfig}
_TOP = {"name", "summary", "licence", "seed"}
_PATH_KEYS = {("data", "train"), ("validation", "folder")}


def _coerce(cls: type, section: str, values: dict[str, Any]):
    known = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise UsageError(f"unknown key(s) in [{section}]: {', '.join(sorted(unknown))}",
                         f"known: {', '.join(sorted(known))}")
    out = {}
    for k, v in values.items():
        out[k] = _checked(section, k, tuple(v) if isinstance(v, list) else v, _default(known[k]))
    try:
        return cls(**out)
    except (TypeError, ValueError) as err:
        raise UsageError(f"bad [{section}] settings: {err}") from None


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def _checked(section: str, key: str, value: Any, default: Any) -> Any:
    """``value`` in the type of the field's default (an int where a float goes is fine):
    a string for a number, or 1.5 steps, is one line here, not a crash hours later."""
    def wrong(kind: str) -> UsageError:
        return UsageError(f"[{section}] {key} must be {kind}, not {value!r}")

    if default is None:
        if (section, key) in _PAIRS:  # e.g. task.focus_range: off unless a pair of numbers
            return _checked(section, key, value, (0.0, 0.0))
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise wrong("true or false")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("a whole number")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise wrong("a string")
    elif isinstance(default, tuple):
        if not isinstance(value, tuple):
            raise wrong("a list")
        element = default[0] if default else _LIST_ELEMENTS.get((section, key))
        if element is not None:  # elements of the default's kind (an int where a float goes is fine)
            value = tuple(_checked(section, key, v, element) for v in value)
    if (section, key) in _PAIRS and len(value) != 2:
        raise wrong("a pair [low, high]")
    return value


# Lists whose default is empty: the kind of their elements.
_LIST_ELEMENTS = {("data", "train"): ""}
# Fixed-length settings: a pair of numbers each.
_PAIRS = {("task", "sigma_range"), ("task", "focus_range"), ("optim", "betas")}


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    for section, key in _PATH_KEYS:
        sec = raw.get(section, {})
        if key not in sec:
            continue
        v = sec[key]
        # Only strings are paths; anything else is left for the type check to refuse.
        fix = lambda p: p if not isinstance(p, str) or not p or Path(p).is_absolute() else str(base / p)  # noqa: E731
        sec[key] = [fix(p) for p in v] if isinstance(v, list) else fix(v)


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """``section.key=value`` or a top-level ``key=value`` (``seed=3``); the value in TOML
    syntax (bare words are strings). Returns (section or None, key, value)."""
    lhs, eq, rhs = text.partition("=")
    names = [part.strip() for part in lhs.split(".")]
    top = len(names) == 1 and names[0] in _TOP
    if not eq or not all(names) or (len(names) != 2 and not top):
        raise UsageError(f"bad --set '{text}'", "use section.key=value, e.g. schedule.steps=5000")
    section, key = (None, names[0]) if top else (names[0], names[1])
    try:
        value = tomllib.loads(f"v = {rhs.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = rhs.strip()
    return section, key, value


def load_config(path: Path, overrides: list[str] = ()) -> TrainConfig:
    """Read and validate a training config; apply ``--set`` overrides."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"cannot read config {path}: {err}") from None
    _resolve_paths(raw, path.resolve().parent)
    given: dict[str, Any] = {}
    for text in overrides:
        section, key, value = parse_override(text)
        if section is None:
            raw[key] = value
            continue
        if section in _TOP:
            raise UsageError(f"bad --set '{text}': '{section}' is a top-level key, not a section",
                             f"use --set {section}=value")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise UsageError(f"bad --set '{text}': '{section}' is not a section")
        raw[section][key] = value
        given.setdefault(section, {})[key] = value
    # Paths given on the command line are relative to the working directory: made absolute
    # here, so that the run's saved config.toml resumes from anywhere.
    _resolve_paths(given, Path.cwd())
    for section, values in given.items():
        raw[section].update(values)
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "") -> TrainConfig:
    raw = dict(raw)
    unknown = set(raw) - _TOP - set(_SECTIONS) - {"model"}
    if unknown:
        raise UsageError(f"unknown config section(s)/key(s): {', '.join(sorted(unknown))}")
    if "name" not in raw:
        raise UsageError("the config needs a top-level name = \"...\"")
    for section in ("model", *_SECTIONS):
        if not isinstance(raw.get(section, {}), dict):
            raise UsageError(f"[{section}] must be a table of settings, not {raw[section]!r}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UsageError(f"seed must be a whole number, not {seed!r}")
    for key in ("name", "summary", "licence"):
        if not isinstance(raw.get(key, ""), str):
            raise UsageError(f"{key} must be a string, not {raw[key]!r}")
    model_raw = dict(raw.get("model", {}))
    arch = str(model_raw.pop("arch", DEFAULT_ARCH))
    try:
        family = get_arch(arch)
        # Types first (8.5 features, "8", a string "False"): one line, not a crash in torch.
        kinds = {f.name: _default(f) for f in fields(family.config_type)}
        model_raw = {k: _checked("model", k, tuple(v) if isinstance(v, list) else v, kinds[k]) if k in kinds else v
                     for k, v in model_raw.items()}
        model = family.config_from_dict(model_raw)
    except (TypeError, ValueError) as err:
        raise UsageError(f"bad [model] settings: {err}") from None
    parts = {s: _coerce(cls, s, dict(raw.get(s, {}))) for s, cls in _SECTIONS.items()}
    cfg = TrainConfig(name=str(raw["name"]), model=model, summary=str(raw.get("summary", "")),
                      licence=str(raw.get("licence", "")), seed=seed,
                      source=source, arch=arch, **parts)
    validate(cfg)
    return cfg


def with_num_images(cfg: TrainConfig, n: int) -> TrainConfig:
    return replace(cfg, num_images=n)


def validate(cfg: TrainConfig) -> None:
    """Reject inconsistent settings with a one-line reason."""
    from n3cli.weights.store import check_name  # the name becomes file names: check it before hours of training

    try:
        check_name(cfg.name)
    except UsageError as err:
        raise UsageError(f"config name: {err.message}", err.hint) from None
    t = cfg.task
    if t.kind not in ("gauss", "blind-gauss", "sr", "raw-pg"):
        raise UsageError(f"unknown task '{t.kind}'", "use gauss, blind-gauss, sr or raw-pg")
    if t.kind == "sr":
        _validate_sr(cfg)
    elif t.kind == "raw-pg":
        _validate_raw(cfg)
    elif cfg.arch != DEFAULT_ARCH:
        raise UsageError(f"task {t.kind} trains an n3net, not model.arch = {cfg.arch}")
    else:
        _validate_denoise(cfg)
    _validate_common(cfg)


def _validate_sr(cfg: TrainConfig) -> None:
    m, t, d = cfg.model, cfg.task, cfg.data
    if cfg.arch != "n3net-sr":
        raise UsageError(f"task sr trains model.arch = \"n3net-sr\", not {cfg.arch}")
    if not t.scales or set(t.scales) - set(m.scales):
        raise UsageError(f"task.scales {list(t.scales)} must be among model.scales {list(m.scales)}")
    if d.color != "y":
        raise UsageError(f"task sr trains on luminance: data.color = \"y\", not {d.color}")
    bad = [sc for sc in t.scales if d.crop % sc]
    if bad:
        raise UsageError(f"data.crop {d.crop} is not a multiple of scale {bad[0]}",
                         "e.g. 96 or 72 suit 2, 3 and 4")


def _validate_raw(cfg: TrainConfig) -> None:
    m, d = cfg.model, cfg.data
    if cfg.arch != "n3net-raw":
        raise UsageError(f"task raw-pg trains model.arch = \"n3net-raw\", not {cfg.arch}")
    if (m.image_channels, m.in_channels, m.out_channels) != (1, 3, 1):
        raise UsageError("task raw-pg needs model.image_channels = 1, in_channels = 3 (plane, a, b), "
                         "out_channels = 1")
    if d.color != "gray":
        raise UsageError(f"task raw-pg trains on gray images: data.color = \"gray\", not {d.color}")
    if not 0.0 <= cfg.task.tone_prob <= 1.0:
        raise UsageError(f"bad task.tone_prob {cfg.task.tone_prob}", "use a share in [0, 1], e.g. 0.5")
    _validate_focus(cfg.task, LOG10_A_RANGE, "log10 a, e.g. [-4, -2.5]")
    bad = [v for v in cfg.validation.sigmas if not -10.0 <= v <= 0.0]
    if bad:
        raise UsageError(f"bad validation.sigmas {list(cfg.validation.sigmas)}",
                         "for raw-pg they are log10 a (a <= 1), e.g. [-3.5, -2.5, -1.5]")


def _validate_focus(t: TaskConfig, span: tuple[float, float], example: str) -> None:
    """task.focus_range: an increasing pair inside the task's noise range; focus_prob a share."""
    if not 0.0 <= t.focus_prob <= 1.0:
        raise UsageError(f"bad task.focus_prob {t.focus_prob}", "use a share in [0, 1], e.g. 0.4")
    if t.focus_range is None:
        return
    lo, hi = t.focus_range
    if not span[0] <= lo < hi <= span[1]:
        raise UsageError(f"bad task.focus_range {list(t.focus_range)}",
                         f"use an increasing pair inside {list(span)} ({example})")


def _validate_denoise(cfg: TrainConfig) -> None:
    m, t, d = cfg.model, cfg.task, cfg.data
    want_in = m.image_channels + (1 if t.kind == "blind-gauss" else 0)
    if m.in_channels != want_in:
        raise UsageError(f"task {t.kind} with {m.image_channels} image channel(s) needs "
                         f"model.in_channels = {want_in}, not {m.in_channels}")
    if m.out_channels != m.image_channels:
        raise UsageError("denoising needs model.out_channels = model.image_channels")
    if d.color not in ("gray", "rgb") or (d.color == "gray") != (m.image_channels == 1):
        raise UsageError(f"data.color '{d.color}' does not fit {m.image_channels} image channel(s)",
                         "gray for 1, rgb for 3")
    lo, hi = t.sigma_range
    if not 0 <= lo <= hi:
        raise UsageError(f"bad task.sigma_range {t.sigma_range}")
    if not 0.0 <= t.real_prob <= 1.0:
        raise UsageError(f"bad task.real_prob {t.real_prob}", "use a share in [0, 1], e.g. 0.5")
    _validate_focus(t, (0.0, 255.0), "sigma in 8-bit units, e.g. [10, 30]")
    if t.kind == "gauss" and not 0 < t.sigma <= 255:
        raise UsageError(f"bad task.sigma {t.sigma}", "a std in 8-bit units: 0 < sigma <= 255")
    bad = [v for v in cfg.validation.sigmas if not 0 < v <= 255]
    if bad:
        raise UsageError(f"bad validation.sigmas {list(cfg.validation.sigmas)}",
                         "noise stds in 8-bit units: 0 < sigma <= 255, e.g. [15, 25, 50]")


def _validate_common(cfg: TrainConfig) -> None:
    d, s = cfg.data, cfg.schedule
    if d.augment not in ("none", "vflip", "dihedral"):
        raise UsageError(f"unknown augmentation '{d.augment}'", "use none, vflip or dihedral")
    if not d.train:
        raise UsageError("no training data: set data.train = [\"folder\", ...]")
    if d.crop < 1 or cfg.optim.batch_size < 1 or d.sweeps < 1:
        raise UsageError("data.crop, data.sweeps and optim.batch_size must be positive")
    # The N3 blocks see crop / scale (SR) / unshuffle pixels. A crop smaller than one N3
    # patch there trains without error, but they never see a neighbour: hours spent on a
    # useless model.
    # (SRConfig has no pixel-unshuffle, hence the getattr.)
    shrink = (max(cfg.task.scales) if cfg.task.kind == "sr" else 1) * getattr(cfg.model, "unshuffle", 1)
    n3_crop = d.crop // shrink
    if n3_crop < cfg.model.patch:
        seen = f"data.crop {d.crop}" + (f" (/{shrink} in the network: {n3_crop})" if shrink > 1 else "")
        raise UsageError(f"{seen} is smaller than the model's N3 patch ({cfg.model.patch}px)",
                         "use a larger data.crop, e.g. 80 (the CPU and GPU recipes)")
    if s.kind not in ("epoch-exp", "exp"):
        raise UsageError(f"unknown schedule '{s.kind}'", "use epoch-exp or exp")
    # steps = 0 with a BatchNorm phase: only re-measure the statistics (e.g. of --init A
    # --init B, the average of two runs).
    if s.kind == "exp" and (s.steps < 0 or s.steps == 0 and s.bn_steps < 1):
        raise UsageError("schedule kind exp needs schedule.steps >= 1 "
                         "(or 0 with schedule.bn_steps >= 1: BatchNorm statistics only)")
    if s.kind == "epoch-exp" and s.epochs < 1:
        raise UsageError("schedule kind epoch-exp needs schedule.epochs >= 1")
    if not (math.isfinite(cfg.optim.lr) and cfg.optim.lr > 0 and math.isfinite(s.lr_end) and s.lr_end > 0):
        raise UsageError("optim.lr and schedule.lr_end must be positive (finite) numbers")
    if not (math.isfinite(cfg.optim.loss_scale) and cfg.optim.loss_scale > 0):
        raise UsageError(f"bad optim.loss_scale {cfg.optim.loss_scale}", "a positive number, e.g. 0.125")
    ck = cfg.checkpoint
    if ck.every_steps < 0 or not (math.isfinite(ck.every_minutes) and ck.every_minutes >= 0):
        raise UsageError("checkpoint.every_steps and checkpoint.every_minutes must not be negative (0 = off)")
    if cfg.runtime.amp not in ("none", "bf16", "auto"):
        raise UsageError(f"unknown runtime.amp '{cfg.runtime.amp}'", "use none, bf16 or auto")
    if cfg.optim.loss not in ("sse", "l1", "psnr"):
        raise UsageError(f"unknown optim.loss '{cfg.optim.loss}'", "use sse, l1 or psnr")
    if not 0.0 <= cfg.optim.ema < 1.0:
        raise UsageError(f"bad optim.ema {cfg.optim.ema}", "use a decay in [0, 1), e.g. 0.999 (0 = off)")
    v, o = cfg.validation, cfg.optim
    if d.limit < 0 or d.holdout < 0 or v.images < 0 or v.crop < 0 or v.every_steps < 0:
        raise UsageError("data.limit, data.holdout and validation.images / crop / every_steps "
                         "must not be negative (0 = off or all)")
    if v.dataset and v.folder:
        raise UsageError("validation.folder and validation.dataset are both set",
                         "keep one: a folder of images, or a named set (val32, cval32)")
    if v.dataset and v.dataset not in VALIDATION_SETS:
        raise UsageError(f"validation.dataset '{v.dataset}' is not a validation set",
                         f"use one of {', '.join(VALIDATION_SETS)}, or validation.folder for any folder")
    if v.images and not v.sigmas:
        raise UsageError("validation.sigmas is empty", "list the levels to watch, or set validation.images = 0")
    if o.weight_decay < 0 or not all(0.0 <= b < 1.0 for b in o.betas):
        raise UsageError(f"bad optim.weight_decay {o.weight_decay} or optim.betas {list(o.betas)}",
                         "weight decay >= 0, betas in [0, 1), e.g. [0.9, 0.999]")
    if cfg.validation.bn_batches < 0:
        raise UsageError(f"bad validation.bn_batches {cfg.validation.bn_batches}",
                         "use a number of batches >= 0, e.g. 16 (0 = off)")


def identity(cfg: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must agree with to be resumed: everything that shapes the weights.

    Validation, checkpoint cadence and runtime switches may change between runs.
    """
    d = cfg.to_dict()
    for k in ("validation", "checkpoint", "runtime", "source", "summary", "licence"):
        d.pop(k, None)
    d["optim"].pop("ema", None)  # the average never changes the trained weights
    # Keys added after the first checkpoints, at their defaults, are left out so that
    # those checkpoints still resume (an n3net with BatchNorm, a denoising task).
    if d["model"].get("arch") == DEFAULT_ARCH:
        d["model"].pop("arch")
        if d["model"].get("batchnorm") is True:
            d["model"].pop("batchnorm")
    if not d["data"].get("holdout"):
        d["data"].pop("holdout", None)
    if d["task"]["kind"] != "sr":
        d["task"].pop("scales", None)
    if not d["task"].get("real_prob"):
        d["task"].pop("real_prob", None)
    if d["task"].get("tone_prob", 1.0) == 1.0:
        d["task"].pop("tone_prob", None)
    return d


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_toml(cfg: TrainConfig) -> str:
    """The resolved configuration as TOML (None values are left out: they are defaults)."""
    d = cfg.to_dict()
    lines = [f"{k} = {_toml_value(d[k])}" for k in ("name", "summary", "licence", "seed")]
    for section in ["model", *_SECTIONS]:
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in d[section].items() if v is not None]
    return "\n".join(lines) + "\n"
