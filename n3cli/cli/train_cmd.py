"""`n3 train`: train an N3Net from a TOML config (parse and report only).

Also runnable without the rest of the CLI, for bare GPU machines:
``python -m n3cli.cli.train_cmd --config configs/blind-gray.toml``.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import click

from n3cli.errors import N3Error, UsageError


def command_line(args: list[str]) -> str:
    """The command that reproduces this run, for its model card.

    Under torchrun (``WORLD_SIZE`` > 1) the launcher is part of the recipe: two processes
    split each batch, so "n3 train ..." alone would not say how the run was made.
    ``--resume`` and ``--reschedule`` are left out: they say how a run was continued, and
    copied into a new run they would refuse to start or continue someone else's.
    """
    from n3cli.engine.distributed import dist_info_from_env

    args = [a for a in args if a not in ("--resume", "--reschedule")]
    info = dist_info_from_env()
    if not info.enabled:
        return "n3 train " + shlex.join(args)
    nodes = info.world // max(info.local_world, 1)
    launcher = f"torchrun --nproc-per-node {info.local_world}" + (f" --nnodes {nodes}" if nodes > 1 else " --standalone")
    return f"{launcher} -m n3cli train " + shlex.join(args)


@click.command("train")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Training config (TOML), e.g. configs/blind-gray.toml.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder for checkpoint, metrics and exported model [runs/<name>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--max-minutes", type=click.FloatRange(min=0), default=None,
              help="Stop after this much wall time (still checkpoints and exports).")
@click.option("--max-steps", type=click.IntRange(min=1), default=None,
              help="Stop once this many steps are done in total (the schedule is unchanged).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value (TOML syntax), e.g. --set schedule.steps=5000.")
@click.option("--data", "data_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Training image folder(s), replacing data.train.")
@click.option("--val", "val_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Validation (monitoring) image folder, replacing validation.folder / .dataset.")
@click.option("--export-to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the trained model into this folder (e.g. weights/).")
@click.option("--init", "init", type=click.Path(dir_okay=False, exists=True, path_type=Path), multiple=True,
              help="Fine-tune: start from this model's .safetensors (same architecture); given "
                   "twice or more, from the average of the models (runs from one start; add "
                   "--set schedule.steps=0 to only re-measure BatchNorm); with --resume the "
                   "checkpoint's weights are used instead.")
@click.option("--reschedule", is_flag=True,
              help="With --resume: accept a changed [schedule] (e.g. --set schedule.steps=N to fit the "
                   "time left); the learning rate follows the new schedule from the step reached.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def train_command(config_path: Path, out: Path | None, resume: bool, max_minutes: float | None,
                  max_steps: int | None, device: str, overrides: tuple[str, ...],
                  data_dirs: tuple[Path, ...], val_dir: Path | None, export_to: Path | None,
                  init: tuple[Path, ...], reschedule: bool, quiet: bool) -> None:
    """Train an N3Net model (denoiser, raw denoiser, super-resolution) from a TOML config (resumable, torchrun-aware).

    \b
    Examples:
      n3 train --config configs/paper-gauss-s25.toml
      n3 train --config configs/blind-gray.toml --set schedule.steps=20000 --max-minutes 30
      n3 train --config configs/blind-gray.toml --out runs/blind --resume
      torchrun --nproc_per_node 2 -m n3cli.cli.train_cmd --config configs/blind-gray.toml
    """
    from n3cli.train import TrainOptions, load_config, train

    if max_minutes is not None and not math.isfinite(max_minutes):  # FloatRange lets nan through
        raise UsageError(f"--max-minutes {max_minutes} is not a number of minutes")
    sets = list(overrides)
    if data_dirs:
        sets.append("data.train=[" + ", ".join(_toml_str(str(d)) for d in data_dirs) + "]")
    if val_dir is not None:
        sets += [f"validation.folder={_toml_str(str(val_dir))}", 'validation.dataset=""']
    cfg = load_config(config_path, sets)
    if reschedule and not resume:
        raise UsageError("--reschedule changes the schedule of a run being resumed", "add --resume")
    opts = TrainOptions(out=out or Path("runs") / cfg.name, resume=resume, device=device,
                        max_minutes=max_minutes, max_steps=max_steps, export_to=export_to, init=init or None,
                        command=command_line(sys.argv[1:] if sys.argv[1:2] != ["train"] else sys.argv[2:]),
                        progress=not quiet, reschedule=reschedule)
    r = train(cfg, opts)
    if r.exported:
        how = {"": "finished", "max-steps": "stopped at --max-steps",
               "max-minutes": "stopped at --max-minutes",
               "diverged": "stopped after repeated divergence (last good state kept)"}[r.stopped]
        rate = f", {r.samples_per_s:.1f} samples/s" if r.samples_per_s else ""
        loss = f", loss {r.final_loss:.4f}" if r.final_loss is not None else ""
        val = f", validation PSNR {r.val['mean']:.2f} dB" if "mean" in r.val else ""
        click.echo(f"{cfg.name}: {how} at step {r.steps_done}/{r.total_steps}{loss}{val}{rate}; "
                   f"{r.wall_s / 60:.1f} min", err=True)
        for p in r.exported:
            click.echo(str(p))
    if r.stopped == "diverged":
        sys.exit(1)  # exported, but the caller must know the run did not complete


@click.command("prune")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Training config of the narrower model (TOML), with --set for what changes.")
@click.option("--from", "teacher", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The trained model to start from: its .json or .safetensors (the two side by side).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the pruned <name>.safetensors + .json.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override a config value, e.g. --set model.features=40.")
@click.option("--crops", type=click.IntRange(min=1), default=48, show_default=True,
              help="Training crops the least-squares refit sees.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the calibration crops.")
def prune_command(config_path: Path, teacher: Path, out: Path, overrides: tuple[str, ...],
                  crops: int, seed: int) -> None:
    """Start a narrower model from a trained one (fewer local-CNN features), refit by least
    squares on training crops; then fine-tune it with `n3 train --init`.

    \b
    Examples:
      n3 prune --config configs/cpu-sr.toml --from weights/n3net-sr.json --out runs/sr-p16 \\
        --set model.features=16
      n3 train --config configs/cpu-sr.toml --init runs/sr-p16/n3net-sr.safetensors \\
        --set model.features=16 --out runs/sr-ft16
    """
    from n3cli.train import load_config
    from n3cli.train.prune import prune

    cfg = load_config(config_path, list(overrides))
    report = prune(cfg, teacher, out, crops=crops, seed=seed)
    errors = ", ".join(f"{e:.3f}" for e in report.stage_errors)
    click.echo(f"{cfg.name}: refit on {report.crops} crops; relative RMS error of each stage's "
               f"output against {teacher.name}: {errors}", err=True)
    click.echo(str(report.json_path.with_suffix(".safetensors")))


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


COMMANDS = [train_command, prune_command]


def main() -> None:
    """Stand-alone entry point with the CLI's error convention (one line, exit code)."""
    try:
        train_command.main(prog_name="n3 train", standalone_mode=False)
    except N3Error as err:
        click.echo(f"n3: error: {err.one_line()}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("n3: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        if isinstance(err, click.UsageError):
            from n3cli.cli.main import OneLineUsageError

            err = OneLineUsageError(err)
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("n3: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
