"""Training progress on stderr: a rich bar on a terminal, plain lines otherwise.

Plain lines (for logs of GPU runs) come at most every ``plain_every_s`` seconds. Only the
main process reports.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Reporter:
    """Shows step, loss, lr, samples/s and ETA."""

    def __init__(self, name: str, total: int, start: int, enabled: bool = True,
                 plain_every_s: float = 10.0):
        self.enabled = enabled
        self.console = Console(stderr=True)
        self.total, self.name = total, name
        self.plain_every_s = plain_every_s
        self._last_plain = 0.0
        self.progress = None
        if enabled and self.console.is_terminal:
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[rate]}"),
                TimeRemainingColumn(), console=self.console, transient=False)
            self.task = self.progress.add_task(name, total=total, completed=start,
                                               loss="-", lr="-", rate="-")
            self.progress.start()

    def update(self, step: int, loss: float | None, lr: float, rate: float | None) -> None:
        if not self.enabled:
            return
        loss_s = f"{loss:.4f}" if loss is not None else "-"
        rate_s = f"{rate:.0f} samples/s" if rate else "-"
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=loss_s, lr=f"{lr:.2e}", rate=rate_s)
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every_s or step >= self.total:
            self._last_plain = now
            eta = ""
            if rate:
                eta = f"  eta {_fmt_eta((self.total - step) * self._batch / max(rate, 1e-9))}"
            print(f"[{self.name}] step {step}/{self.total}  loss {loss_s}  lr {lr:.2e}  {rate_s}{eta}",
                  file=sys.stderr, flush=True)

    _batch = 1.0  # samples per step (set by the loop) for the plain ETA

    def set_batch(self, batch: int) -> None:
        self._batch = float(max(batch, 1))

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.console.print(text)
        else:
            print(f"[{self.name}] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
