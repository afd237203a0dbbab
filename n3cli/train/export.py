"""Export a trained model: ``<name>.safetensors`` + ``<name>.json`` + model card ``<name>.md``.

The weights go through :func:`n3cli.weights.store.save_model` (the store's own format,
called by the loop);
the store imports platformdirs only when it needs the user store, so this also works on a
bare GPU machine without it.
"""

from __future__ import annotations

from pathlib import Path


from n3cli.io.atomic import atomic_write


def write_card(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def curve_summary(losses: list[tuple[int, float]], points: int = 8) -> list[tuple[int, float]]:
    """A few (step, loss) points spread over the run (the logged ones nearest each fraction)."""
    if not losses:
        return []
    idx = sorted({round(i * (len(losses) - 1) / max(points - 1, 1)) for i in range(points)})
    return [losses[i] for i in idx]


def model_card(*, name: str, summary: str, licence: str, config_text: str, command: str,
               data: str, steps_done: int, total_steps: int, wall_s: float, machine: str,
               samples_per_s: float | None, final_loss: float | None, val: dict[str, float],
               val_folder: str, curve: list[tuple[int, float]], val_curve: list[tuple[int, float]],
               stopped_early: str = "", loss_name: str = "0.125 x SSE per sample",
               val_is_test: bool = True, resumed_with: str = "") -> str:
    """Markdown model card: what the model is, how it was trained, what it measured."""
    lines = [f"# {name}", "", summary or "(no summary)", "",
             "## Training", "",
             f"- Data: {data}",
             f"- Steps: {steps_done} of {total_steps}" + (f" (stopped early: {stopped_early})" if stopped_early else ""),
             f"- Wall time: {wall_s / 60:.1f} min on {machine}",
             f"- Throughput: {samples_per_s:.1f} samples/s" if samples_per_s else "- Throughput: n/a",
             f"- Final training loss ({loss_name}): {final_loss:.4f}" if final_loss is not None
             else "- Final training loss: n/a",
             f"- Command: `{command}`"]
    if resumed_with:
        lines.append(f"- Last resumed with: `{resumed_with}`")
    lines.append("")
    lines += ["## Validation (monitoring only)", "",
              f"PSNR (dB, unclipped float output) on {val_folder or 'no validation set'}. "
              # A folder named by the user may be a test set (Set12, Set5) or their own images:
              # say what holds for both.
              + ("A folder given to the run (validation.folder or --val), possibly test images: "
                 "they were only watched during training, never used to select a model or stop "
                 "early." if val_is_test else
                 "The model never trained on them; they are not a test set."), ""]
    if val:
        lines += [f"- {k}: {v:.2f} dB" for k, v in val.items()] + [""]
    else:
        lines += ["- (not run)", ""]
    lines += ["## Learning curve", "", "| step | training loss |", "|---:|---:|"]
    lines += [f"| {s} | {v:.4f} |" for s, v in curve]
    if val_curve:
        lines += ["", "| step | validation PSNR (mean, dB) |", "|---:|---:|"]
        lines += [f"| {s} | {v:.2f} |" for s, v in val_curve]
    lines += ["", "## Licence", "", licence or "(not stated)", "",
              "## Configuration", "", "```toml", config_text.rstrip(), "```", ""]
    return "\n".join(lines)
