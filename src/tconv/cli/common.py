"""What the commands share: the spec options (declared once), one way to fail, small checks.

Every user mistake is a :class:`~tconv.spec.ConvSpecError` turned into one line on stderr
(``tconv: error: ...``) and exit code 2; with ``--json`` the same error is also a JSON object
on stdout, ``{"error": ..., "parameter": ...}``, so a script reading stdout always gets JSON.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import NoReturn, Optional

import numpy as np
import typer

from .. import flags
from ..spec import ConvSpec, ConvSpecError

# -- the spec options: the original experiment by default ---------------------------------------

INPUT = typer.Option("1,1,4,4", "--input", help="Forward input shape N,C,*spatial (any dims).")
OUT_CHANNELS = typer.Option(1, "--out-channels", help="Forward output channels C_out.")
KERNEL = typer.Option("3", "--kernel", help="Kernel size: one int, or one per dim (3 or 3,5).")
STRIDE = typer.Option("2", "--stride", help="Stride: one int or one per dim.")
PADDING = typer.Option(
    "1", "--padding", help="Forward padding: an int, one per dim (1,2), low:high pairs per dim "
                           "(0:1,1:2), 'same' or 'valid'.")
DILATION = typer.Option("1", "--dilation", help="Dilation: one int or one per dim.")
GROUPS = typer.Option(1, "--groups", help="Groups; must divide both channel counts.")
OUTPUT_PADDING = typer.Option(
    None, "--output-padding", help="Only for output_padding >= stride (allowed below the "
    "dilation): the input rows past the last kernel placement. Normally derived.")
INTS = typer.Option(False, "--ints", help="Small integer data: readable, exact arrays.")
SEED = typer.Option(0, "--seed", help="Seed of the random data (>= 0).")
JSON = typer.Option(False, "--json", help="Print the result as JSON (errors too).")


def backends_option() -> typer.Option:
    """``--backends``: which frameworks' rows to compute (the names come from the registry)."""
    from .. import frameworks

    return typer.Option(
        None, "--backends", help=f"Framework rows: a comma list of "
        f"{', '.join(frameworks.with_ways())}, 'all' or 'none' (default: the installed ones).")


def spec_from(input: str, out_channels: int, kernel: str, stride: str, padding: str,
              dilation: str, groups: int, output_padding: Optional[str]) -> ConvSpec:
    """The spec the spec options describe (``--input`` is the forward input, x)."""
    return flags.build_spec(input, out_channels, kernel, stride, padding, dilation, groups,
                            output_padding)


# -- failing --------------------------------------------------------------------------------------

def fail(message: str, parameter: str | None = None, *, as_json: bool = False) -> NoReturn:
    """A user mistake: one line on stderr (and the error as JSON on stdout), exit code 2."""
    print(f"tconv: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message, "parameter": parameter}))
    raise typer.Exit(2)


@contextlib.contextmanager
def user_errors(as_json: bool = False):
    """Turn a ConvSpecError (or a missing plotting package) raised inside into :func:`fail`."""
    from ..explain.drawing import PlotUnavailable

    try:
        yield
    except ConvSpecError as e:
        fail(str(e), e.parameter, as_json=as_json)
    except PlotUnavailable as e:
        fail(str(e), "plot", as_json=as_json)


# -- small checks ---------------------------------------------------------------------------------

def check_seed(seed: int) -> None:
    if seed < 0:
        raise ConvSpecError(f"--seed must be >= 0, got {seed}", "--seed")


def at_least_one(flag: str, value: int) -> None:
    if value < 1:
        raise ConvSpecError(f"{flag} must be >= 1, got {value}", flag)


def parse_dims(text: str) -> tuple[int, ...]:
    values = flags.ints("--dims", text)
    if any(d < 1 for d in values):
        raise ConvSpecError(f"--dims must be >= 1, got {text!r}", "--dims")
    return values


def writable_file(flag: str, path: str) -> None:
    """Fail before a long run, not after it, when ``path`` cannot be written (creating nothing:
    the file is opened for appending and, if it did not exist, removed again)."""
    existed = Path(path).exists()
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise ConvSpecError(f"{flag} {path!r} cannot be written: {e.strerror}", flag) from None
    if not existed:
        Path(path).unlink()


def new_directory_or_existing(flag: str, path: str) -> None:
    """``path`` may be an existing directory, or a new one whose parent exists: tconv creates
    no directory the user did not name."""
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise ConvSpecError(f"{flag} {path!r} is not a directory", flag)
        return
    if not target.parent.is_dir():
        raise ConvSpecError(f"{flag} {path!r}: its parent directory {str(target.parent)!r} does "
                            f"not exist", flag)


def draw(rng: np.random.Generator, shape, dtype: np.dtype) -> np.ndarray:
    """Normal data for floats (as torch.randn), small integers for integer dtypes."""
    if dtype.kind in "iu":
        low = 0 if dtype.kind == "u" else -3
        return rng.integers(low, 4, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def new_console(stderr: bool = False):
    """A rich Console for a command's output. When the reader of stdout goes away
    (``tconv verify | head``) it raises BrokenPipeError, which :func:`tconv.cli.app.main` ends
    quietly with exit code 0 (rich's own answer is exit code 1)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise BrokenPipeError

    return _Console(stderr=stderr)


def progress_bar():
    """The progress bar of a long command, on stderr: what runs, the bar, done/total and the
    time so far; gone when the command ends, and off when stderr is not a terminal."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    err = new_console(stderr=True)
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True,
                    disable=not err.is_terminal)


def number(value) -> str:
    return "" if value is None else f"{value:.3g}"


def red(n: int) -> str:
    return f"[bold red]{n}[/]" if n else "0"
