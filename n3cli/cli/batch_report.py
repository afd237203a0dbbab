"""How the batch commands (``n3 denoise``, ``n3 upscale``) talk: per-file lines, rich
progress bars, the plan and the summary.

Everything goes to stderr except what the user asked for as data (``--json``,
``--dry-run``), which goes to stdout.
"""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from n3cli.app.batch import GRAY_ON_COLOR_HINT, BatchReport, ItemResult, Reporter
from n3cli.io.batch import Plan, PlanItem


def _stderr_console() -> Console:
    # soft_wrap: a message stays one line however narrow the terminal (or pipe).
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


class ConsoleReporter(Reporter):
    """Prints one line per file; shows progress (files, tiles) when ``show_progress``:
    live bars when ``live`` (a terminal), else plain lines every few percent or seconds
    (a pipe or a log file has no use for cursor tricks). ``label`` starts every line
    ("n3", or "n3[1/4]" for torchrun rank 1 of 4)."""

    def __init__(self, show_progress: bool, single: bool, quiet_items: bool = False, label: str = "n3",
                 live: bool = True):
        self.console = _stderr_console()
        self.single = single
        self.quiet_items = quiet_items
        self.label = label
        self.progress: Progress | None = None
        self.plain: PlainProgress | None = PlainProgress(self._print) if show_progress and not live else None
        self._files = self._tiles = None
        self._seen_notes: set[str] = set()
        if show_progress and live:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                     TimeRemainingColumn(), console=self.console, transient=True)

    def __enter__(self) -> "ConsoleReporter":
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _print(self, text: str) -> None:
        if self.label != "n3" and text.startswith("n3:"):
            text = self.label + text[2:]
        (self.progress.console if self.progress is not None else self.console).print(text)

    def note(self, message: str) -> None:
        if message not in self._seen_notes:  # the same hint once per run
            self._seen_notes.add(message)
            self._print(f"n3: {message}")

    def item_started(self, item: PlanItem, index: int, total: int) -> None:
        if self.plain is not None:
            self.plain.start(item.src.name, index, total)
        if self.progress is None:
            return
        if self._files is None and total > 1:
            self._files = self.progress.add_task("files", total=total)
        if self._tiles is not None:
            self.progress.remove_task(self._tiles)
            self._tiles = None
        if self._files is not None:
            self.progress.update(self._files, completed=index, description=item.src.name)

    def tiles(self, *args, **kw) -> None:
        """Engine callback ``(done, total)``; tolerant of other shapes: a bar is never worth
        failing a file for."""
        try:
            done = int(kw.get("done", args[0] if args else 0))
            total = int(kw.get("total", args[1] if len(args) > 1 else 0))
        except (TypeError, ValueError, IndexError):
            return
        if self.plain is not None and total > 1:
            self.plain.tiles(done, total)
        if self.progress is None or not total or total <= 1:
            return
        if self._tiles is None:
            self._tiles = self.progress.add_task("tiles", total=total)
        self.progress.update(self._tiles, completed=done, total=total)

    def item_finished(self, result: ItemResult) -> None:
        if self.progress is not None and self._files is not None:
            self.progress.advance(self._files)
        failed_in_batch = result.status not in ("ok", "skipped") and not self.single
        if self.quiet_items:  # --json: the report has every item; failures are still said here
            if failed_in_batch:
                self._say_failed(result)
            return
        for note in result.notes:
            if GRAY_ON_COLOR_HINT in note:
                self.note(f"{note.split(':')[0]}: {GRAY_ON_COLOR_HINT}")
            else:
                self._print(f"n3: {result.input}: note: {note}")
        if result.status == "ok":
            how = "estimated" if result.sigma_source == "estimated" else "given"
            sigma = f"sigma {result.sigma:.1f} {how}, " if result.sigma is not None else ""
            if result.sigma is not None and result.sigma_used is not None \
                    and abs(result.sigma_used - result.sigma) > 1e-6:
                sigma = f"sigma {result.sigma:.1f} {how}, {result.sigma_used:g} used, "
            self._print(f"n3: {result.input} -> {result.output} ({sigma}model {result.model}, "
                        f"{result.seconds:.1f} s)")
        elif result.status == "skipped":
            self._print(f"n3: skipped {result.input}: {result.reason}")
        elif failed_in_batch:
            self._say_failed(result)

    def _say_failed(self, result: ItemResult) -> None:
        self._print(f"n3: failed {result.reason}" if result.input in result.reason
                    else f"n3: failed {result.input}: {result.reason}")


class PlainProgress:
    """Progress as ordinary lines: one when a file starts (in a batch), then one whenever
    ``every_pct`` percent of its tiles or ``every_s`` seconds have passed since the last."""

    def __init__(self, emit, every_s: float = 30.0, every_pct: float = 10.0):
        self.emit, self.every_s, self.every_pct = emit, every_s, every_pct
        self.name, self._last_t, self._last_pct = "", 0.0, -100.0

    def start(self, name: str, index: int, total: int) -> None:
        self.name, self._last_t, self._last_pct = name, time.monotonic(), 0.0
        if total > 1:
            self.emit(f"n3: file {index + 1}/{total}: {name}")

    def tiles(self, done: int, total: int) -> None:
        pct, now = 100.0 * done / total, time.monotonic()
        if done >= total or (now - self._last_t < self.every_s and pct - self._last_pct < self.every_pct):
            return  # the file's own line follows at 100 %
        self._last_t, self._last_pct = now, pct
        self.emit(f"n3: {self.name}: {pct:.0f} % ({done}/{total} tiles)")


def print_plan(plan: Plan, as_json: bool) -> None:
    """``--dry-run``: the plan on stdout."""
    if as_json:
        doc = {"items": [{"input": str(i.src), "output": str(i.dst), "extra_outputs": [str(e) for e in i.extras],
                          "action": i.action, "reason": i.reason} for i in plan.items],
               "ignored": [{"path": str(p), "reason": r} for p, r in plan.ignored]}
        click.echo(json.dumps(doc, indent=2))
        return
    for i in plan.items:
        if i.action == "run":
            also = "".join(f" + {e}" for e in i.extras)
            click.echo(f"write  {i.src} -> {i.dst}{also}")
        else:
            click.echo(f"{i.action:5s}  {i.src}: {i.reason}")
    for p, why in plan.ignored:
        click.echo(f"ignore {p}: {why}")
    n = len(plan.to_run())
    click.echo(f"{n} to write, {len(plan.items) - n} skipped or refused, {len(plan.ignored)} ignored "
               "(dry run: nothing written)")


def print_summary(report: BatchReport, console: Console, title: str = "n3 denoise summary") -> None:
    """The end-of-batch table on stderr: counts, then every failure and skip with its reason."""
    by_reason: dict[str, int] = {}
    for _, why in report.ignored:
        by_reason[why] = by_reason.get(why, 0) + 1
    for why, n in sorted(by_reason.items()):
        console.print(f"n3: ignored {n} file{'s' if n > 1 else ''}: {why}")
    table = Table(title=title, show_lines=False, title_justify="left")
    table.add_column("status")
    table.add_column("file", overflow="fold")
    table.add_column("reason", overflow="fold")
    for item in report.items:
        if item.status != "ok":
            table.add_row(item.status, item.input, item.reason.removeprefix(f"{item.input}: "))
    ok, skipped, failed = report.count("ok"), report.count("skipped"), report.count("failed")
    if skipped or failed:
        console.print(table)
    console.print(f"n3: {ok} succeeded, {skipped} skipped, {failed} failed"
                  + (f" ({len(report.ignored)} non-input files ignored)" if report.ignored else ""))
