"""Learning-rate schedules, as pure functions of the step (so resuming needs no state).

- ``epoch-exp`` (paper): lr = lr0 * 10^(-decades * e / decay_epochs), constant within
  epoch e, for ``epochs`` epochs; then ``bn_epochs`` epochs at lr 0.
- ``exp``: lr decays exponentially per step from lr0 at step 0 to ``lr_end`` at the last
  gradient step, so a run sized to a time budget still ends fully decayed; then
  ``bn_steps`` steps at lr 0.

Steps at lr 0 change no parameter (Adam's update is lr times something finite), only the
BatchNorm running statistics: the loop runs them as forward passes without gradients.
"""

from __future__ import annotations

from n3cli.train.config import TrainConfig


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of (0-based) ``step``; 0.0 in the final BatchNorm-only phase."""
    s, lr0 = cfg.schedule, cfg.optim.lr
    if step >= cfg.grad_steps:
        return 0.0
    if s.kind == "exp":
        if cfg.grad_steps <= 1:
            return lr0
        return lr0 * (s.lr_end / lr0) ** (step / (cfg.grad_steps - 1))
    epoch = step // cfg.steps_per_epoch
    return lr0 * 10.0 ** (-s.decades * epoch / s.decay_epochs)


def is_bn_phase(cfg: TrainConfig, step: int) -> bool:
    return step >= cfg.grad_steps
