"""``tconv verify``: one spec, every way of computing its input gradient, against exact
arithmetic."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
import typer

from .. import flags
from .. import frameworks
from ..spec import ConvSpecError
from .common import (DILATION, GROUPS, INPUT, KERNEL, OUTPUT_PADDING, OUT_CHANNELS, PADDING,
                     STRIDE, backends_option, check_seed, draw, new_console, number, spec_from,
                     user_errors)

STYLE = {"PASS": "green", "FAIL": "bold red", "N/A": "yellow", "KNOWN": "magenta",
         "REFUSED": "cyan", "CRASH": "bold red"}


def command(
    input: str = INPUT, out_channels: int = OUT_CHANNELS, kernel: str = KERNEL,
    stride: str = STRIDE, padding: str = PADDING, dilation: str = DILATION,
    groups: int = GROUPS, output_padding: Optional[str] = OUTPUT_PADDING,
    dtype: str = typer.Option("float32", help="Data dtype: float16/32/64, int8..int64, uint*."),
    seed: int = typer.Option(0, help="Seed of the random data (>= 0)."),
    gradient: str = typer.Option(
        "forward", help="The upstream gradient: 'forward' uses o = conv(x, w), as the original "
                        "experiment; 'random' draws w and g from --seed as `tconv sweep` does, "
                        "so that a sweep's repro command meets the same numbers."),
    backends: Optional[str] = backends_option(),
    show: bool = typer.Option(False, "--show", help="Print x, w, o, the zero-inserted gradient, "
                              "the flipped kernel and every result."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (errors too)."),
) -> None:
    """Compute the input gradient of one convolution every way and compare with exact arithmetic.

    With no options it reproduces the original experiment: a 1x1x4x4 input, a 3x3 kernel,
    stride 2, padding 1, and the forward output o as the upstream gradient. Each row is one way
    of computing dL/dx; it passes when every cell is within the float rounding bound of the
    exact result (integers: equal). N/A: the way cannot express the spec (the reason is
    printed); KNOWN: a documented framework bug; REFUSED: a converter refused the layer;
    CRASH: a converter's process died.
    Exit code 0 when all pass, 1 when any differs, 2 on bad input.

    Examples:

      tconv verify

      tconv verify --input 2,4,9,9 --out-channels 6 --kernel 4 --stride 3 --groups 2

      tconv verify --input 1,3,8,8,8 --out-channels 3 --padding 0:1,1:0,1:1 --backends torch
    """
    from .. import exact
    from .._arrays import flip_spatial, insert_zeros, pad_or_crop
    from ..ops import convolve
    from ..verify import verify

    with user_errors(as_json):
        spec = spec_from(input, out_channels, kernel, stride, padding, dilation, groups,
                         output_padding)
        data_dtype = flags.dtype(dtype)
        names = frameworks.parse(backends)
        check_seed(seed)
        if gradient not in ("forward", "random"):
            raise ConvSpecError(f"--gradient must be 'forward' or 'random', got {gradient!r}",
                                "--gradient")
        exact.check_affordable(spec)
        if gradient == "random":
            from ..strategies import arrays_for

            x, w, o = arrays_for(spec, seed, data_dtype)
        else:
            rng = np.random.default_rng(seed)
            x = draw(rng, spec.input_shape, data_dtype)
            w = draw(rng, spec.weight_shape, data_dtype)
            o = convolve(x, w, spec)
        report = verify(spec, w, o, backends=names)
    versions = {name: frameworks.get(name).describe() for name in names}
    if as_json:
        print(json.dumps(dict(report.to_dict(), frameworks=versions), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    from rich.table import Table

    out = new_console()
    out.print(f"[bold]tconv verify[/bold]: {spec.describe()}")
    if versions:
        out.print("frameworks: " + ", ".join(versions.values()), highlight=False)
    if show:
        def show_array(title: str, a: np.ndarray) -> None:
            out.print(f"[bold]{title}[/bold] {tuple(a.shape)} {a.dtype}")
            out.print(np.array2string(np.asarray(a), precision=4, suppress_small=True,
                                      max_line_width=out.width), highlight=False)

        show_array("x (input)", x)
        show_array("w (kernel)", w)
        show_array("o = conv(x, w) = upstream gradient" if gradient == "forward"
                   else "o = the upstream gradient (random)", o)
        stretched = pad_or_crop(insert_zeros(o, spec.stride),
                                [(0, op) for op in spec.output_padding])
        show_array(f"o with stride-1 zeros inserted (+ output_padding {spec.output_padding} on "
                   f"the high side)", stretched)
        show_array("w flipped in every spatial dim", flip_spatial(w))
        show_array("exact dL/dx", report.exact)
        for row in report.rows:
            if row.result is not None:
                show_array(row.name, row.result)
    table = Table(title="dL/dx, every way, against exact arithmetic")
    table.add_column("way", overflow="fold")
    for col in ("source", "max |diff|", "bound", "status", "note"):
        table.add_column(col, no_wrap=True)
    notes: list[str] = []  # long reasons go below the table, numbered
    for row in report.rows:
        mark = ""
        if row.note:
            if row.note not in notes:
                notes.append(row.note)
            mark = f"[{notes.index(row.note) + 1}]"
        table.add_row(row.name, row.source, number(row.max_abs_diff), number(row.bound),
                      f"[{STYLE[row.status]}]{row.status}[/]", mark)
    out.print(table)
    for i, note in enumerate(notes, 1):
        out.print(f"[{i}] {note}", highlight=False, markup=False)
    count = {status: sum(r.status == status for r in report.rows) for status in STYLE}
    verdict = "all agree" if report.passed else "DISAGREEMENT"
    refused = "".join(f", {count[status]} {word}" for status, word in (
        ("REFUSED", "refused by a converter"), ("CRASH", "crashed")) if count[status])
    out.print(f"{verdict}: {count['PASS']} pass, {count['FAIL']} fail, {count['KNOWN']} "
              f"known differences, {count['N/A']} not expressible{refused}")
    raise typer.Exit(0 if report.passed else 1)
