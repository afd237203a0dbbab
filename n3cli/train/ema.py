"""An exponential moving average (EMA) of the weights, the model a run exports.

Averaging the last few thousand steps' weights costs nothing at inference and removes
part of the noise that the final learning rate still leaves in them. The average only
watches training: the optimiser keeps stepping the live weights, so a run with an EMA
follows exactly the trajectory of the same run without one, and turning it on for a
resumed run is allowed (it starts from the weights the checkpoint holds).

Only floating-point parameters are averaged; buffers (BatchNorm running statistics) are
the live model's. When a run ends with a BatchNorm-only phase (lr 0), the average is
copied into the model as that phase starts, so the statistics are measured for the
weights that are exported.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn as nn


class WeightAverage:
    """EMA of a model's parameters with the usual warm-up ``min(decay, (1+n)/(10+n))``.

    The warm-up keeps the first updates from leaning on the starting weights (a fresh
    random init); ``n`` counts the updates made, and is saved with the average.
    """

    def __init__(self, model: nn.Module, decay: float,
                 state: dict[str, torch.Tensor] | None = None, updates: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), not {decay}")
        self.decay = decay
        self.updates = updates
        params = dict(self._params(model))
        if state is not None and state.keys() != params.keys():
            state = None  # another architecture's average: start again from the weights
        self.shadow = {name: (state[name] if state is not None else p.detach()).clone().to(p)
                       for name, p in params.items()}

    @staticmethod
    def _params(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
        for name, p in model.named_parameters():
            if p.is_floating_point():
                yield name, p

    def rate(self) -> float:
        """The weight of the newest step in the next update: 1 - effective decay."""
        n = self.updates
        return 1.0 - min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (after an optimiser step)."""
        w = self.rate()
        for name, p in self._params(model):
            self.shadow[name].lerp_(p.detach(), w)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite the model's parameters with the average."""
        for name, p in self._params(model):
            p.copy_(self.shadow[name])

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """The model with the averaged weights inside the block, its own weights after it."""
        live = {name: p.detach().clone() for name, p in self._params(model)}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, p in self._params(model):
                    p.copy_(live[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged parameters by name (for the checkpoint)."""
        return dict(self.shadow)

    def clone_state(self) -> tuple[dict[str, torch.Tensor], int]:
        """A copy of (average, update count), for rolling back a diverged step."""
        return {k: v.clone() for k, v in self.shadow.items()}, self.updates

    def restore(self, snapshot: tuple[dict[str, torch.Tensor], int]) -> None:
        """Go back to a :meth:`clone_state` copy."""
        shadow, self.updates = snapshot
        self.shadow = {k: v.clone() for k, v in shadow.items()}


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts with the same keys (a uniform "model soup").

    Runs fine-tuned from one set of weights tend to stay in one basin, where the mean of
    their weights can score better than either (Wortsman et al. 2022, "Model soups");
    compare it with them on a validation set (``n3 eval --dataset val32``). BatchNorm
    statistics of the mean are only approximate: re-measure them (``schedule.bn_steps``).
    Integer buffers (step counters) are the first state's.
    """
    if len(states) == 1:
        return states[0]
    out = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            total = torch.stack([s[key].double() for s in states]).mean(0)
            out[key] = total.to(first.dtype)
        else:
            out[key] = first
    return out
