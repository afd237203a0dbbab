"""The ``n3`` command: a thin Click layer over the library.

Commands only parse options and report; all work lives in importable functions. Every
:class:`n3cli.errors.N3Error` becomes one line on stderr and its exit code; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import sys
import traceback

import click

from n3cli import __version__
from n3cli.errors import N3Error

EPILOG = """\b
Examples:
  n3 denoise photo.png --sigma 25          Gaussian denoising (any size, CPU or GPU)
  n3 denoise photos/ -o clean/ --recursive a whole folder, noise level estimated
  n3 denoise photo.png --preview           also write a before/after sheet
  n3 upscale photo.png --scale 3           single-image super-resolution (x2, x3, x4)
  n3 compare a.png b.png -o compare.png    side by side, zoomed crops, PSNR with --reference
  n3 eval --dataset set12 --sigma 25       reproduce a cell of the paper's Table 3
  n3 weights list                          models, installed or not
  n3 weights fetch paper                   download the paper's released weights
  n3 train --config configs/blind-gray.toml
  n3 doctor                                what this machine offers n3

\b
Exit codes: 0 ok, 1 a file or step failed, 2 usage error, 129/130/143 interrupted (SIGHUP, Ctrl-C, SIGTERM).
Shell completion: eval "$(_N3_COMPLETE=bash_source n3)"  (zsh_source, fish_source)
"""


class OneLineUsageError(click.UsageError):
    """Click's own usage errors (unknown option, bad choice, missing value) as one line,
    like the project's: what is wrong, then where to look."""

    def __init__(self, err: click.UsageError):
        super().__init__(" ".join(err.format_message().split()).rstrip("."), err.ctx)

    def show(self, file=None) -> None:
        where = self.ctx.command_path if self.ctx else "n3"
        click.echo(f"n3: error: {self.format_message()}: see '{where} --help'", err=True)


# Click >= 8.2 raises this for a bare group (``n3``, ``n3 weights``): its message is the
# whole help, which must stay formatted rather than be joined into one line.
_HELP_ERRORS = tuple(getattr(click.exceptions, n) for n in ("NoArgsIsHelpError",)
                     if hasattr(click.exceptions, n))


class N3Group(click.Group):
    """Turns project errors into one-line messages with the right exit code."""

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _HELP_ERRORS:
            raise
        except click.UsageError as err:  # the group's own options: n3 --bogus
            raise OneLineUsageError(err) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except N3Error as err:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()  # and still the error's own exit code
            click.echo(f"n3: error: {err.one_line()}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt as err:
            # Ctrl-C, or SIGTERM turned into n3cli.io.atomic.Terminated (temp files are gone).
            click.echo("n3: interrupted", err=True)
            ctx.exit(128 + getattr(err, "signum", 2))
        except _HELP_ERRORS:
            raise
        except click.UsageError as err:  # a subcommand's options, or no such command
            raise err if isinstance(err, OneLineUsageError) else OneLineUsageError(err) from None
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # `n3 ... | head`: the reader is gone; Click exits quietly
            raise
        except Exception as err:
            # A bug: one line, not a traceback, unless asked for.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            text = " ".join(str(err).split())[:200]
            click.echo(f"n3: internal error: {type(err).__name__}: {text} (rerun with --debug "
                       "for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=N3Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="n3")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """n3: image restoration with Neural Nearest Neighbors Networks (N3Net)."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from n3cli.cli import compare_cmd, denoise_cmd, doctor_cmd, eval_cmd, train_cmd, upscale_cmd, weights_cmd

    for mod in (denoise_cmd, upscale_cmd, compare_cmd, eval_cmd, weights_cmd, train_cmd, doctor_cmd):
        for command in mod.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="n3")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
