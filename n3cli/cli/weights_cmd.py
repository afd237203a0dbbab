"""`n3 weights`: list, fetch and import model weights."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

LIST_EXAMPLES = """\b
Examples:
  n3 weights list                    every known model, installed or not
  n3 weights fetch paper             download + verify + convert the paper's weights
  n3 weights fetch paper --mirror file:///data/n3net
  n3 weights import 051_ckpt.t7 --name n3net-paper-s25
  n3 weights path                    where imported and downloaded models are stored
"""


def _console(stderr: bool = False) -> Console:
    """Tables (data) go to stdout; messages (``stderr=True``) to stderr, as in every command."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console.width = max(console.width, 120)
    return console


@click.group("weights", epilog=LIST_EXAMPLES)
def weights_group() -> None:
    """Manage model weights: bundled, downloaded (sha256-verified) and imported."""


@weights_group.command("list", epilog=LIST_EXAMPLES)
def list_command() -> None:
    """Show every known model: task, colour, noise level, size, where it is installed."""
    from n3cli.weights import available_models

    table = Table(title="known models")
    for col in ("name", "task", "input", "sigma / scale", "params", "installed", "where"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for m in available_models():
        d = m.descriptor
        if d.scales:
            level = "x" + "/".join(map(str, d.scales))
        elif d.noise_map:
            level = "blind" + (f" {d.sigma_range[0]:g}-{d.sigma_range[1]:g}" if d.sigma_range else "")
        else:
            level = "-" if d.sigma is None else f"{d.sigma:g}"
        table.add_row(m.name, d.task, d.packing, level, f"{m.params:,}", "yes" if m.installed else "no",
                      m.where)
    _console().print(table)


@weights_group.command("fetch", epilog="""\b
Examples:
  n3 weights fetch paper
  n3 weights fetch paper --mirror https://example.org/n3net
  n3 weights fetch paper --mirror /data/n3net        (a folder with the upstream layout)
""")
@click.argument("what", type=click.Choice(["paper"]), metavar="WHAT")
@click.option("--mirror", default=None, metavar="URL",
              help="Replaces https://github.com/visinf/n3net/raw/master (http(s)://, file:// or a folder).")
@click.option("--force", is_flag=True, help="Download and convert models that are already installed too.")
def fetch_command(what: str, mirror: str | None, force: bool) -> None:
    """Download the paper's released gray models (sigma 25/50/70), verify and convert them."""
    from n3cli.weights import PAPER_NOTICE, fetch_paper, store_dir

    console = _console(stderr=True)
    console.print(f"[bold]licence:[/] {PAPER_NOTICE}")
    written = fetch_paper(mirror, progress=lambda msg: console.print(f"  {msg}"), force=force)
    for path in written:
        console.print(f"installed {path.stem} -> {path.with_suffix('.safetensors')}")
    console.print(f"store: {store_dir()}")


@weights_group.command("import", epilog="""\b
Examples:
  n3 weights import 051_ckpt.t7 --name n3net-paper-s25
  n3 weights import my_model.pt --name my-gray-s15 --sigma 15
""")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name to install it under.")
@click.option("--sigma", type=float, default=None, help="Noise level of a fixed-sigma model (unregistered names).")
@click.option("--licence", default=None, help="Licence note to record with the weights.")
def import_command(path: Path, name: str, sigma: float | None, licence: str | None) -> None:
    """Convert a PyTorch checkpoint (tensors only) or safetensors file into the store."""
    from n3cli.weights import import_checkpoint

    js = import_checkpoint(path, name, sigma=sigma, licence=licence)
    _console(stderr=True).print(f"installed {name} -> {js.with_suffix('.safetensors')}")


@weights_group.command("path")
def path_command() -> None:
    """Print the store folder ($N3_HOME or the platform's data dir) and the bundled one
    (printing creates nothing: `n3 doctor` says whether the store is usable)."""
    from n3cli.weights import bundled_dir, store_dir

    click.echo(f"store:   {store_dir(create=False)}")
    click.echo(f"bundled: {bundled_dir()}")


COMMANDS = [weights_group]
