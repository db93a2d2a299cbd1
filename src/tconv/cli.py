"""The ``tconv`` command."""
from __future__ import annotations

import json
import sys
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from . import backends as registry
from ._arrays import flip_spatial, insert_zeros, pad_or_crop
from .algorithms import METHODS
from .forward import conv as forward_conv
from .spec import ConvSpec, ConvSpecError
from .verify import verify as run_verify

app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
    help="The transposed convolution as the backward pass of a convolution: compute it every "
         "way, check it against exact arithmetic and the frameworks, explain it.")



@app.callback()
def _root() -> None:
    """The transposed convolution as the backward pass of a convolution: compute it every way,
    check it against exact arithmetic and the frameworks, explain it.

    Start with `tconv verify`, which reproduces the original experiment.
    """


def _fail(message: str) -> None:
    """A user mistake: one line on stderr, exit code 2."""
    print(f"tconv: error: {message}", file=sys.stderr)
    raise typer.Exit(2)


def _ints(flag: str, text: str) -> tuple[int, ...]:
    """``"1,2"`` / ``"1x2"`` / ``"3"`` -> ints."""
    parts = text.replace("x", ",").split(",")
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise ConvSpecError(f"{flag} takes integers separated by ',' or 'x', got {text!r}") from None


def _per_dim(flag: str, text: str):
    values = _ints(flag, text)
    return values[0] if len(values) == 1 else values


def _padding(text: str):
    """``same`` / ``valid`` / ``1`` / ``1,2`` / ``1:2,0:1`` (low:high per dim)."""
    if text.lower() in ("same", "valid"):
        return text.lower()
    if ":" in text:
        pairs = []
        for part in text.split(","):
            lo, sep, hi = part.partition(":")
            pair = _ints("--padding", lo) + (_ints("--padding", hi) if sep else ())
            if len(pair) != 2:
                raise ConvSpecError(f"--padding pairs are low:high, got {part!r}")
            pairs.append(pair)
        return tuple(pairs)
    return _per_dim("--padding", text)


def _dtype(text: str) -> np.dtype:
    try:
        dtype = np.dtype(text)
    except TypeError:
        raise ConvSpecError(f"--dtype {text!r} is not a NumPy dtype") from None
    if dtype.kind not in "iuf":
        raise ConvSpecError(f"--dtype must be a real integer or float dtype, got {dtype}")
    return dtype


def _draw(rng: np.random.Generator, shape, dtype: np.dtype) -> np.ndarray:
    """Normal data for floats (as torch.randn), small integers for integer dtypes."""
    if dtype.kind in "iu":
        low = 0 if dtype.kind == "u" else -3
        return rng.integers(low, 4, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _show(console: Console, title: str, a: np.ndarray) -> None:
    console.print(f"[bold]{title}[/bold] {tuple(a.shape)} {a.dtype}")
    console.print(np.array2string(np.asarray(a), precision=4, suppress_small=True,
                                  max_line_width=console.width), highlight=False)


@app.command()
def verify(
    input: str = typer.Option("1,1,4,4", "--input", help="Input shape N,C,*spatial (any dims)."),
    out_channels: int = typer.Option(1, "--out-channels", help="Output channels C_out."),
    kernel: str = typer.Option("3", help="Kernel size: one int, or one per dim (3 or 3,5)."),
    stride: str = typer.Option("2", help="Stride: one int or one per dim."),
    padding: str = typer.Option(
        "1", help="Forward padding: an int, one per dim (1,2), low:high pairs per dim "
                  "(0:1,1:2), 'same' or 'valid'."),
    dilation: str = typer.Option("1", help="Dilation: one int or one per dim."),
    groups: int = typer.Option(1, help="Groups; must divide both channel counts."),
    dtype: str = typer.Option("float32", help="Data dtype: float16/32/64, int8..int64, uint*."),
    seed: int = typer.Option(0, help="Seed of the random x and w."),
    backends: Optional[str] = typer.Option(
        None, help="Framework rows: comma list of "
                   f"{', '.join(registry.BACKENDS)}, 'all' or 'none' (default: installed ones)."),
    show: bool = typer.Option(False, "--show", help="Print x, w, o, the zero-inserted gradient, "
                                                     "the flipped kernel and every result."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Compute the input gradient of one convolution every way and compare with exact arithmetic.

    With no options it reproduces the original experiment: a 1x1x4x4 input, a 3x3 kernel,
    stride 2, padding 1, and the forward output o as the upstream gradient. Each row is one way
    of computing dL/dx; it passes when every cell is within the float rounding bound of the
    exact result (integers: equal). Exit code 0 when all pass, 1 when any differs, 2 on bad input.

    Example: tconv verify --input 2,4,9,9 --out-channels 6 --kernel 4 --stride 3 --groups 2
    """
    try:
        shape = _ints("--input", input)
        if len(shape) < 3:
            raise ConvSpecError(f"--input must be N,C,*spatial with at least one spatial dim, "
                                f"got {input!r}")
        ndim = len(shape) - 2
        k = _ints("--kernel", kernel)
        k = k * ndim if len(k) == 1 else k
        if len(k) != ndim:
            raise ConvSpecError(f"--kernel has {len(k)} sizes but --input has {ndim} spatial "
                                f"dims")
        # with groups < 1 the weight shape is a placeholder: ConvSpec rejects groups first
        w_shape = (out_channels, shape[1] // groups if groups >= 1 else shape[1]) + k
        spec = ConvSpec.forward(shape, w_shape, stride=_per_dim("--stride", stride),
                                padding=_padding(padding),
                                dilation=_per_dim("--dilation", dilation), groups=groups)
        data_dtype = _dtype(dtype)
        names = registry.parse(backends)
    except ConvSpecError as e:
        _fail(str(e))
    rng = np.random.default_rng(seed)
    x = _draw(rng, spec.input_shape, data_dtype)
    w = _draw(rng, spec.weight_shape, data_dtype)
    o = forward_conv(x, w, spec)
    report = run_verify(spec, w, o, backends=names)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    console = Console()
    console.print(f"[bold]tconv verify[/bold]: {spec.describe()}")
    if show:
        _show(console, "x (input)", x)
        _show(console, "w (kernel)", w)
        _show(console, "o = conv(x, w) = upstream gradient", o)
        stretched = pad_or_crop(insert_zeros(o, spec.stride),
                                [(0, op) for op in spec.output_padding])
        _show(console, f"o with stride-1 zeros inserted (+ output_padding {spec.output_padding} "
                       f"on the high side)", stretched)
        _show(console, "w flipped in every spatial dim", flip_spatial(w))
        _show(console, "exact dL/dx", report.exact)
        for row in report.rows:
            if row.result is not None:
                _show(console, row.name, row.result)
    table = Table(title="dL/dx, every way, against exact arithmetic")
    for col in ("way", "source", "max |diff|", "bound", "status", "note"):
        table.add_column(col, overflow="fold")
    style = {"PASS": "green", "FAIL": "bold red", "N/A": "yellow", "KNOWN": "magenta"}
    for row in report.rows:
        table.add_row(row.name, row.source, _num(row.max_abs_diff), _num(row.bound),
                      f"[{style[row.status]}]{row.status}[/]", row.note)
    console.print(table)
    verdict = "all agree" if report.passed else "DISAGREEMENT"
    console.print(f"{verdict}: {sum(r.status == 'PASS' for r in report.rows)} pass, "
                  f"{sum(r.status == 'FAIL' for r in report.rows)} fail, "
                  f"{sum(r.status == 'N/A' for r in report.rows)} not expressible")
    raise typer.Exit(0 if report.passed else 1)


def _num(value) -> str:
    return "" if value is None else f"{value:.3g}"


def main() -> None:
    app()


if __name__ == "__main__":
    main()
