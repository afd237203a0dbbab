"""`n3 eval`: reproduce the paper's Table 3 (or KAIR's protocol) on the standard test sets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from n3cli.data.testsets import DATASETS, PAPER_ORDER, PROTOCOLS, check_limit, dataset_spec
from n3cli.cli.options import GRAY_ON_COLOR_CHOICES, PRECISION_CHOICES, SR_DATASET_CHOICES, SR_SCALE_CHOICES
from n3cli.errors import UsageError

if TYPE_CHECKING:
    from rich.table import Table

EXAMPLES = """\b
Examples:
  n3 eval --dataset set12 --model n3net-paper-s25        paper protocol, sigma from the model
  n3 eval --dataset bsd68 --sigma 50 --json scores.json  --model auto picks the model
  n3 eval --dataset all --sigma 25 --per-image           Set12 -> BSD68 -> Urban100, one seed
  n3 eval --dataset bsd68 --sigma 25 --protocol kair     DnCNN's BSD68 PNGs, 8-bit output
  n3 eval --dataset set12 --sigma 25 --protocol real     noisy input clipped to 8 bits, like real files
  n3 eval --dataset cbsd68 --sigma 25 --gray-on-color rgb --limit 10
  n3 eval --dataset set12 --sigma 25 --ensemble 8        self-ensemble of 8 flips/rotations
  n3 eval --dataset val32 --sigma 25 --model my-run       compare models off the test sets
  n3 eval --task sr --dataset set5 --scale 2             the bundled n3net-sr, Y PSNR (Table 5)
  n3 eval --task sr --dataset all --model bicubic        the bicubic baseline on Set5/Urban100/B100
  n3 eval --task raw --dataset bsd68 --model n3net-blind Poisson-Gaussian grid, sigma-map baseline
  n3 eval --task raw --dataset set12 --noise 0.01,5e-5   one (a, b) pair instead of the grid
"""


def _check_json_target(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"--json {path} is a directory", "name a file, e.g. --json results.json")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"--json {path}: {parent} is a file, not a folder", "name a file in a folder")
    if not parent.is_dir():
        raise UsageError(f"--json {path}: the folder {parent} does not exist", "create it first")
    from n3cli.io.atomic import writable_folder
    from n3cli.weights import bundled_dir, store_dir

    for models in (store_dir(create=False), bundled_dir()):  # a .json there is read as a model
        if parent.resolve() == models.resolve():
            raise UsageError(f"--json {path} is in the model folder {models}",
                             "write the scores elsewhere (a .json there describes a model)")
    writable_folder(parent, f"--json {path}: the folder")  # a probe file, before hours of evaluation


def _write_json(target: str, payload: object) -> None:
    text = json.dumps(payload, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    from n3cli.io.atomic import atomic_write

    atomic_write(target, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def paper_reference(r, limited: bool) -> dict:
    """What Table 3 says for this row, and whether the difference means anything.

    The paper's number belongs to the paper's own N3Net trained for that sigma; only that
    model (its released weights), on the paper protocol, on the whole set, without an
    ensemble, in fp32, gets a "diff". For every other model the number is a reference.
    """
    from n3cli.eval import paper_psnr
    from n3cli.weights.sources import source_for

    ref = paper_psnr(r.dataset, r.sigma)
    same = (ref is not None and source_for(r.model) is not None and r.model_sigma == r.sigma
            and r.protocol == "paper" and r.ensemble == 1 and r.precision == "fp32" and not limited)
    return {"paper_psnr": ref,
            "paper_model": None if ref is None else f"the paper's N3Net for sigma {r.sigma:g} (Table 3)",
            "diff_to_paper": round(r.mean_psnr - ref, 4) if same else None}


def _table(results, per_image: bool, limited: bool, interrupted: bool = False) -> Table:
    from rich.table import Table

    notes = []
    if limited:
        notes.append("first images only (--limit): not comparable with the paper")
    if interrupted:
        notes.append("interrupted: means of the images that finished")
    refs = [paper_reference(r, limited or interrupted) for r in results]
    if any(ref["paper_psnr"] is not None and ref["diff_to_paper"] is None for ref in refs):
        notes.append("paper = the paper's N3Net for that sigma: a reference for this model, not a diff")
    table = Table(title="n3 eval (PSNR dB)", caption="; ".join(notes) or None)
    for col in ("dataset", "sigma", "model", "protocol", "images", "PSNR", "paper", "diff",
                "SSIM", "seconds"):
        table.add_column(col, justify="right" if col not in ("dataset", "model", "protocol") else "left")
    for r, ref in zip(results, refs):
        name = method_label(r.model, r.ensemble, r.precision)
        paper, diff = ref["paper_psnr"], ref["diff_to_paper"]
        table.add_row(r.dataset, f"{r.sigma:g}", name, r.protocol, str(len(r.images)),
                      f"{r.mean_psnr:.3f}", "-" if paper is None else f"{paper:.2f}",
                      "-" if diff is None else f"{diff:+.3f}",
                      f"{r.mean_ssim:.4f}", f"{r.seconds:.1f}")
        if per_image:
            for im in r.images:
                table.add_row(f"  {im.name}", "", "", "", "", f"{im.psnr:.3f}", "", "",
                              f"{im.ssim:.4f}", f"{im.seconds:.2f}")
    return table


@click.command("eval", epilog=EXAMPLES)
@click.option("--task", type=click.Choice(["denoise", "sr", "raw"]), default="denoise", show_default=True,
              help="denoise: Table 3's Gaussian protocol; sr: super-resolution (Y PSNR, Table 5); "
                   "raw: Poisson-Gaussian noise a*x + b on gray planes (spec section 5).")
@click.option("--dataset", "-d", type=click.Choice(DATASETS + SR_DATASET_CHOICES + ("all",)), default=None,
              help="Test set (default set12, or set5 for --task sr); 'all' = Set12, BSD68, Urban100 with "
                   "one noise stream (sr: Set5, Urban100, B100); val32 / cval32 (gray / colour): "
                   "the 32 BSDS500 val images outside BSD68, to choose between models.")
@click.option("--scale", type=click.Choice(["2", "3", "4", "all"]), default=None,
              help="--task sr: upscaling factor (default all three).")
@click.option("--sigma", "-s", type=float, default=None,
              help="Noise level (8-bit units). Default: the model's own sigma.")
@click.option("--model", "-m", "model_name", default="auto", show_default=True,
              help="Model name (see `n3 weights list`); auto picks by sigma and colour (sr: n3net-sr); "
                   "--task sr also takes bicubic.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with Set12/, CBSD68/, BSD68/, Urban100/ (sr: Set5/, Urban100/, BSDS500/; "
                   "default $N3_DATA or ../shared/datasets).")
@click.option("--json", "json_out", default=None, metavar="FILE|-",
              help="Also write the scores as JSON to FILE ('-' = stdout; the table then goes to stderr).")
@click.option("--limit", type=int, default=None, help="Only the first N images of each set.")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default="paper", show_default=True,
              help="paper: float noise/output, seed 1234; real: the same noise, noisy image and "
                   "output clipped and rounded to 8 bits (like real files); kair: DnCNN's BSD68 "
                   "PNGs, 8-bit output.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda[:i] or mps.")
@click.option("--gray-on-color", type=click.Choice(GRAY_ON_COLOR_CHOICES), default="rgb",
              show_default=True, help="How a gray model runs on colour images (cbsd68, cval32).")
@click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1", show_default=True,
              help="Average over this many flips/rotations of each image (n times slower).")
@click.option("--noise", metavar="A,B", default=None,
              help="--task raw: one noise pair a,b (normalised units) instead of the fixed grid.")
@click.option("--tone", is_flag=True, help="--task raw: tone-map each image x^g * s as in training.")
@click.option("--precision", type=click.Choice(PRECISION_CHOICES), default="fp32", show_default=True,
              help="Arithmetic precision of the convolutions, as n3 denoise --precision.")
@click.option("--per-image", is_flag=True, help="Show one row per image.")
def eval_command(task: str, dataset: str | None, scale: str | None, sigma: float | None, model_name: str,
                 data_dir: Path | None, json_out: str | None, limit: int | None, protocol: str, device: str,
                 gray_on_color: str, ensemble: str, noise: str | None, tone: bool, precision: str,
                 per_image: bool) -> None:
    """Score a model with the paper's evaluation protocols on standard test sets: Gaussian
    denoising (Table 3), super-resolution (--task sr, Table 5) or raw noise (--task raw)."""
    if task != "raw" and (noise is not None or tone):
        raise UsageError("--noise and --tone are for --task raw")
    if task != "denoise" and sigma is not None:  # sr has no noise; raw noise is a,b
        raise UsageError("--sigma is for --task denoise", "--task raw takes --noise a,b" if task == "raw" else None)
    check_limit(limit)  # before any model is loaded
    if task != "sr" and scale is not None:
        raise UsageError("--scale is for --task sr")
    if task != "denoise" and protocol != "paper":  # sr and raw have one protocol each
        raise UsageError(f"--protocol is for --task denoise; --task {task} has one protocol")
    if task != "denoise" and gray_on_color != "rgb":
        raise UsageError(f"--gray-on-color is for --task denoise (cbsd68), not --task {task}")
    if json_out not in (None, "-"):  # before the evaluation, not after it
        _check_json_target(Path(json_out))
    if task == "raw":
        _eval_raw(dataset or "set12", noise, tone, model_name, data_dir, json_out, limit, device,
                  int(ensemble), precision, per_image)
        return
    if task == "sr":
        _eval_sr(dataset or "set5", scale, model_name, data_dir, json_out, limit, device, int(ensemble),
                 precision, per_image)
        return
    dataset = dataset or "set12"
    if sigma is not None:
        from n3cli.data.estimate import check_sigma_value  # numpy only

        check_sigma_value(sigma, "--sigma")
    if dataset not in DATASETS + ("all",):  # urban100 is both a denoising and an SR set
        raise UsageError(f"{dataset} is a super-resolution test set", "add --task sr")
    from n3cli.engine import resolve_device
    from n3cli.eval import evaluate_many
    from n3cli.weights import choose_model, load_model

    from rich.console import Console

    datasets = list(PAPER_ORDER) if dataset == "all" else [dataset]
    console = Console(stderr=json_out == "-")
    if not console.is_terminal:
        console.width = max(console.width, 120)  # logs and pipes: keep rows unwrapped
    if model_name == "auto":
        if sigma is None:
            raise UsageError("--model auto needs --sigma", "e.g. --sigma 25, or name a model")
        model_name = choose_model(sigma, color=dataset_spec(dataset).color if dataset != "all" else False)
        console.print(f"model: {model_name} (auto)")
    dev = resolve_device(device)
    model, spec = load_model(model_name, dev)
    d = spec.descriptor
    if d.task != "denoise":
        other = {"sr": "--task sr", "raw-denoise": "--task raw"}.get(d.task, "another --task")
        raise UsageError(f"'{model_name}' is not a Gaussian denoiser (task {d.task})",
                         f"score it with {other}, or pick a denoise model with --model")
    if sigma is None:
        if d.sigma is None:
            raise UsageError(f"'{model_name}' is a blind model", "pass --sigma S")
        sigma = d.sigma
    elif d.sigma is not None and d.sigma != sigma:
        console.print(f"[yellow]note:[/] {model_name} was trained for sigma {d.sigma:g}, "
                      f"evaluating at sigma {sigma:g}")
    elif d.sigma_range and not d.sigma_range[0] <= sigma <= d.sigma_range[1]:
        console.print(f"[yellow]note:[/] sigma {sigma:g} is outside {model_name}'s training range "
                      f"{d.sigma_range[0]:g}..{d.sigma_range[1]:g}")
    start = time.monotonic()
    with console.status("evaluating...") as status:
        def progress(ds: str, done: int, of: int, name: str) -> None:
            finished.append(ds)
            # Mean time per image so far; images of one set are of similar size.
            eta = (time.monotonic() - start) / len(finished) * (of - done)
            status.update(f"{ds}: {done}/{of} ({name}), {ds} done in about {_clock(eta)}")

        finished: list[str] = []
        try:
            results = evaluate_many(model, spec, datasets, sigma, protocol, data_dir, limit, dev,
                                    gray_on_color, progress, int(ensemble), precision)
        except KeyboardInterrupt as err:
            partial = [r for r in getattr(err, "partial", []) if r.images]
            status.stop()
            if partial:
                console.print(_table(partial, per_image, limit is not None, interrupted=True))
            click.echo(f"n3: interrupted after {sum(len(r.images) for r in partial)} images", err=True)
            raise
    console.print(_table(results, per_image, limit is not None))
    if json_out is not None:
        from n3cli.weights import weights_sha256

        sha = weights_sha256(model_name)
        payload = [{**r.to_dict(), "model_sha256": sha, **paper_reference(r, limit is not None), "limit": limit}
                   for r in results]
        _write_json(json_out, payload[0] if len(payload) == 1 else {"results": payload})


def method_label(model: str, ensemble: int, precision: str) -> str:
    """How a result names its method: the model, its ensemble size and a precision other
    than fp32 (``n3net-blind x8 bf16``)."""
    return " ".join([model] + ([f"x{ensemble}"] if ensemble != 1 else [])
                    + ([precision] if precision != "fp32" else []))


def _eval_sr(dataset: str, scale: str | None, model_name: str, data_dir: Path | None, json_out: str | None,
             limit: int | None, device: str, ensemble: int, precision: str, per_image: bool) -> None:
    """``n3 eval --task sr``: the SR protocol (n3cli.eval.sr) for a model or bicubic."""
    from rich.console import Console
    from rich.table import Table

    from n3cli.eval.sr import SR_REFERENCES, bicubic_upscale, sr_evaluate

    if dataset not in SR_DATASET_CHOICES + ("all",):
        raise UsageError(f"{dataset} is not a super-resolution test set",
                         f"use one of {', '.join(SR_DATASET_CHOICES)} or all")
    datasets = list(SR_DATASET_CHOICES) if dataset == "all" else [dataset]
    scales = list(SR_SCALE_CHOICES) if scale in (None, "all") else [int(scale)]
    console = Console(stderr=json_out == "-")
    if not console.is_terminal:
        console.width = max(console.width, 120)
    name = "n3net-sr" if model_name == "auto" else model_name
    if name == "bicubic" and (ensemble != 1 or precision != "fp32"):
        raise UsageError("--ensemble and --precision are for models, not bicubic",
                         "drop them, or name a model with --model")
    upscalers = {}
    for s in scales:
        upscalers[s] = (bicubic_upscale if name == "bicubic"
                        else _model_upscaler(name, s, device, ensemble, precision))
    results = []
    start = time.monotonic()
    with console.status("evaluating...") as status:
        for d in datasets:
            for s in scales:
                def progress(ds: str, done: int, of: int, img: str) -> None:
                    status.update(f"{ds} x{s}: {done}/{of} ({img}), {_clock(time.monotonic() - start)} so far")

                label = method_label(name, ensemble, "fp32" if name == "bicubic" else precision)
                results.append(sr_evaluate(upscalers[s], label,
                                           d, s, data_dir, limit, progress))
    table = Table(title="n3 eval --task sr (Y PSNR dB / SSIM, shave = scale)",
                  caption="first images only (--limit)" if limit else
                  "published Set5 numbers: " + "; ".join(f"{m} {'/'.join(f'{v:.2f}' for v in r.values())}"
                                                          for m, r in SR_REFERENCES.items()))
    for col in ("dataset", "scale", "method", "images", "PSNR", "SSIM", "seconds"):
        table.add_column(col, justify="left" if col in ("dataset", "method") else "right")
    for r in results:
        table.add_row(r.dataset, f"x{r.scale}", r.method, str(len(r.images)), f"{r.mean_psnr:.3f}",
                      f"{r.mean_ssim:.4f}", f"{r.seconds:.1f}")
        if per_image:
            for im in r.images:
                table.add_row(f"  {im.name}", "", "", "", f"{im.psnr:.3f}", f"{im.ssim:.4f}", f"{im.seconds:.2f}")
    console.print(table)
    if json_out is not None:
        used = _receipt(name, ensemble, precision)
        payload = [{**r.to_dict(), **used, "limit": limit} for r in results]  # limit: first images only
        _write_json(json_out, payload[0] if len(payload) == 1 else {"results": payload})


def _receipt(name: str, ensemble: int, precision: str) -> dict:
    """What a --json receipt needs besides the scores to run the same method again: the
    model, the sha256 of its weights (None for bicubic), its ensemble and precision."""
    from n3cli.weights import weights_sha256

    if name == "bicubic":
        return {"model": name, "model_sha256": None, "ensemble": 1, "precision": "fp32"}
    return {"model": name, "model_sha256": weights_sha256(name), "ensemble": ensemble, "precision": precision}


def _model_upscaler(name: str, scale: int, device: str, ensemble: int, precision: str):
    from n3cli.engine import resolve_device
    from n3cli.eval.sr import model_upscaler
    from n3cli.weights import load_model

    dev = resolve_device(device)
    model, spec = load_model(name, dev, scale=scale)
    return model_upscaler(model, spec, dev, ensemble, precision)


def _eval_raw(dataset: str, noise: str | None, tone: bool, model_name: str, data_dir: Path | None,
              json_out: str | None, limit: int | None, device: str, ensemble: int, precision: str,
              per_image: bool) -> None:
    """``n3 eval --task raw``: the Poisson-Gaussian protocol (n3cli.eval.raw) for a model."""
    from rich.console import Console
    from rich.table import Table

    from n3cli.app.raw import DEFAULT_RAW_MODEL, parse_noise
    from n3cli.eval.raw import RAW_DATASETS, RAW_GRID, raw_evaluate

    if dataset not in RAW_DATASETS:
        raise UsageError(f"--task raw evaluates on {' or '.join(RAW_DATASETS)}, not {dataset}")
    pairs = parse_noise(noise) if noise else None
    if pairs is not None and len(set(pairs)) > 1:  # per-CFA pairs mean nothing on gray planes
        raise UsageError("--task raw --noise takes one pair a,b (the test images are single planes)")
    grid = pairs[:1] if pairs else RAW_GRID
    name = DEFAULT_RAW_MODEL if model_name == "auto" else model_name
    denoise = _model_raw_denoiser(name, device, ensemble, precision)
    console = Console(stderr=json_out == "-")
    if not console.is_terminal:
        console.width = max(console.width, 120)
    start = time.monotonic()
    with console.status("evaluating...") as status:
        def progress(ds: str, done: int, of: int, img: str) -> None:
            eta = (time.monotonic() - start) / done * (of - done)
            status.update(f"{ds}: {done}/{of} ({img}), done in about {_clock(eta)}")

        r = raw_evaluate(denoise, method_label(name, ensemble, precision), dataset, grid,
                         data_dir, limit, tone, progress=progress)
    table = Table(title=f"n3 eval --task raw: {r.dataset}, {len(r.images)} images (PSNR dB on [0, 1], "
                        f"output clipped{', tone-mapped' if tone else ''})",
                  caption=f"{r.method}; mean over the grid {r.mean_psnr:.3f} dB"
                          + ("; first images only (--limit)" if limit else ""))
    for col in ("a", "b", "noisy", "PSNR"):
        table.add_column(col, justify="right")
    for p in r.pairs:
        table.add_row(f"{p.a:.3g}", f"{p.b:.3g}", f"{p.noisy_psnr:.2f}", f"{p.mean_psnr:.3f}")
        if per_image:
            for im, v in zip(r.images, p.psnr):
                table.add_row(f"  {im}", "", "", f"{v:.3f}")
    console.print(table)
    if json_out is not None:
        _write_json(json_out, {**r.to_dict(), **_receipt(name, ensemble, precision), "limit": limit})


def _model_raw_denoiser(name: str, device: str, ensemble: int, precision: str):
    from n3cli.engine import resolve_device
    from n3cli.eval.raw import model_raw_denoiser
    from n3cli.weights import load_model

    dev = resolve_device(device)
    model, spec = load_model(name, dev)
    return model_raw_denoiser(model, spec, dev, ensemble, precision)


def _clock(seconds: float) -> str:
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


COMMANDS = [eval_command]
