"""The ``tconv`` command: the app and its commands, each defined in its own module.

The app imports the command modules; a command module imports only :mod:`.common` (and the
library), never the app. :func:`main` turns every usage error the command-line parser finds
(an unknown option, ``--groups abc``) into one line on stderr and exit code 2, as the commands
do with their own errors, and ends quietly when the reader of the output goes away
(``tconv verify | head``).
"""
from __future__ import annotations

import json
import os
import sys

import typer

try:                    # typer vendors click since 0.2x; before, it used click itself
    from typer._click.exceptions import UsageError
except ImportError:     # pragma: no cover
    from click import UsageError

from .. import __version__
from . import (audit, bench, check, convert, explain, matrix, overlap, serve, shape, sweep,
               vectors, verify)

app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="The transposed convolution as the backward pass of a convolution: compute it every "
         "way, check it against exact arithmetic and the frameworks, explain it.")


def _version(value: bool) -> None:
    if value:
        print(f"tconv {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print tconv's version and exit.")) -> None:
    """The transposed convolution as the backward pass of a convolution: compute it every way,
    check it against exact arithmetic and the frameworks, explain it.

    Start with `tconv verify`, which reproduces the original experiment.
    """


for module in (verify, sweep, check, bench, explain, shape, overlap, matrix, convert, audit,
               serve, vectors):
    app.command(module.__name__.rpartition(".")[2])(module.command)


def main(args: list[str] | None = None) -> None:
    """Run the app; a usage error is one line (and JSON on stdout with ``--json``), exit 2."""
    args = sys.argv[1:] if args is None else list(args)
    command = typer.main.get_command(app)
    code = 0
    try:
        with command.make_context("tconv", args) as ctx:
            command.invoke(ctx)
    except typer.Exit as e:                     # the command's own exit code
        code = e.exit_code
    except UsageError as e:
        message = e.format_message()
        if not message:                          # no command: the help was printed
            _flush_quietly()
            sys.exit(0)
        options = getattr(getattr(e, "param", None), "opts", None) or [None]
        typed = _typed(args, options)
        if typed is not None and repr(typed) not in message:
            message = f"{message} (got {typed!r})"
        if e.ctx is not None and e.ctx.command_path != "tconv":
            message = f"{e.ctx.command_path.removeprefix('tconv ')}: {message}"
        print(f"tconv: error: {message}", file=sys.stderr)
        if "--json" in args:
            print(json.dumps({"error": message, "parameter": options[0]}))
        code = 2
    except (typer.Abort, KeyboardInterrupt):
        print("tconv: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:                      # the reader went away: nothing more to say
        code = 0
    _flush_quietly()
    sys.exit(code)


def _typed(args: list[str], options: list) -> str | None:
    """What the user typed for an option (``--groups abc`` or ``--groups=abc``), if anything."""
    for i, arg in enumerate(args):
        for option in filter(None, options):
            if arg == option and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(option + "="):
                return arg[len(option) + 1:]
    return None


def _flush_quietly() -> None:
    """Flush stdout; if its reader has gone (``| head``), say nothing and drop the rest."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
