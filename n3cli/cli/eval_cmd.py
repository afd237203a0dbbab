"""`n3 eval`: reproduce the paper's Table 3 (or KAIR's protocol) on the standard test sets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from n3cli.data.testsets import DATASETS, PAPER_ORDER, PROTOCOLS
from n3cli.cli.options import GRAY_ON_COLOR_CHOICES
from n3cli.errors import UsageError
from n3cli.io.atomic import atomic_write

EXAMPLES = """\b
Examples:
  n3 eval --dataset set12 --model n3net-paper-s25        paper protocol, sigma from the model
  n3 eval --dataset bsd68 --sigma 50 --json scores.json  --model auto picks the model
  n3 eval --dataset all --sigma 25 --per-image           Set12 -> BSD68 -> Urban100, one seed
  n3 eval --dataset bsd68 --sigma 25 --protocol kair     DnCNN's BSD68 PNGs, 8-bit output
  n3 eval --dataset cbsd68 --sigma 25 --gray-on-color rgb --limit 10
  n3 eval --dataset set12 --sigma 25 --ensemble 8        self-ensemble of 8 flips/rotations
"""


def _write_json(target: str, payload: object) -> None:
    text = json.dumps(payload, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    atomic_write(target, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _table(results, per_image: bool, limited: bool) -> Table:
    from n3cli.eval import paper_psnr

    caption = "first images only (--limit): not comparable with the paper" if limited else None
    table = Table(title="n3 eval (PSNR dB)", caption=caption)
    for col in ("dataset", "sigma", "model", "protocol", "images", "PSNR", "paper", "diff",
                "SSIM", "seconds"):
        table.add_column(col, justify="right" if col not in ("dataset", "model", "protocol") else "left")
    for r in results:
        ref = paper_psnr(r.dataset, r.sigma)
        name = r.model if r.ensemble == 1 else f"{r.model} x{r.ensemble}"
        table.add_row(r.dataset, f"{r.sigma:g}", name, r.protocol, str(len(r.images)),
                      f"{r.mean_psnr:.3f}", "-" if ref is None else f"{ref:.2f}",
                      "-" if ref is None else f"{r.mean_psnr - ref:+.3f}",
                      f"{r.mean_ssim:.4f}", f"{r.seconds:.1f}")
        if per_image:
            for im in r.images:
                table.add_row(f"  {im.name}", "", "", "", "", f"{im.psnr:.3f}", "", "",
                              f"{im.ssim:.4f}", f"{im.seconds:.2f}")
    return table


@click.command("eval", epilog=EXAMPLES)
@click.option("--dataset", "-d", type=click.Choice(DATASETS + ("all",)), default="set12",
              show_default=True, help="Test set; 'all' = Set12, BSD68, Urban100 with one noise stream.")
@click.option("--sigma", "-s", type=float, default=None,
              help="Noise level (8-bit units). Default: the model's own sigma.")
@click.option("--model", "-m", "model_name", default="auto", show_default=True,
              help="Model name (see `n3 weights list`); auto picks by sigma and colour.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with Set12/, CBSD68/, BSD68/, Urban100/ (default $N3_DATA or ../shared/datasets).")
@click.option("--json", "json_out", default=None, metavar="FILE|-",
              help="Also write the scores as JSON to FILE ('-' = stdout; the table then goes to stderr).")
@click.option("--limit", type=int, default=None, help="Only the first N images of each set.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="paper", show_default=True,
              help="paper: float noise/output, seed 1234; kair: DnCNN's BSD68 PNGs, 8-bit output.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda[:i] or mps.")
@click.option("--gray-on-color", type=click.Choice(GRAY_ON_COLOR_CHOICES), default="rgb",
              show_default=True, help="How a gray model runs on colour images (cbsd68).")
@click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
              help="Average over this many flips/rotations of each image (n times slower).")
@click.option("--per-image", is_flag=True, help="Show one row per image.")
def eval_command(dataset: str, sigma: float | None, model_name: str, data_dir: Path | None,
                 json_out: str | None, limit: int | None, protocol: str, device: str,
                 gray_on_color: str, ensemble: str, per_image: bool) -> None:
    """Score a model with the paper's evaluation protocol (Table 3) on standard test sets."""
    from n3cli.engine import resolve_device
    from n3cli.eval import evaluate_many
    from n3cli.weights import choose_model, load_model

    datasets = list(PAPER_ORDER) if dataset == "all" else [dataset]
    console = Console(stderr=json_out == "-")
    if not console.is_terminal:
        console.width = max(console.width, 120)  # logs and pipes: keep rows unwrapped
    if model_name == "auto":
        if sigma is None:
            raise UsageError("--model auto needs --sigma", "e.g. --sigma 25, or name a model")
        model_name = choose_model(sigma, color=dataset == "cbsd68")
        console.print(f"model: {model_name} (auto)")
    dev = resolve_device(device)
    model, spec = load_model(model_name, dev)
    d = spec.descriptor
    if sigma is None:
        if d.sigma is None:
            raise UsageError(f"'{model_name}' is a blind model", "pass --sigma S")
        sigma = d.sigma
    elif d.sigma is not None and d.sigma != sigma:
        console.print(f"[yellow]note:[/] {model_name} was trained for sigma {d.sigma:g}, "
                      f"evaluating at sigma {sigma:g}")
    with console.status("evaluating...") as status:
        def progress(ds: str, done: int, total: int, name: str) -> None:
            status.update(f"{ds}: {done}/{total} ({name})")

        results = evaluate_many(model, spec, datasets, sigma, protocol, data_dir, limit, dev,
                                gray_on_color, progress, int(ensemble))
    console.print(_table(results, per_image, limit is not None))
    if json_out is not None:
        payload = [r.to_dict() for r in results]
        _write_json(json_out, payload[0] if len(payload) == 1 else {"results": payload})


COMMANDS = [eval_command]
