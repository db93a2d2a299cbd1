"""``tconv matrix``: the forward convolution as a matrix C, and C^T as the backward pass."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
import typer

from .common import (DILATION, GROUPS, INPUT, INTS, JSON, KERNEL, OUTPUT_PADDING, OUT_CHANNELS,
                     PADDING, SEED, STRIDE, new_console, spec_from, user_errors, writable_file)
from .explain import write


def command(
    input: str = INPUT, out_channels: int = OUT_CHANNELS, kernel: str = KERNEL,
    stride: str = STRIDE, padding: str = PADDING, dilation: str = DILATION,
    groups: int = GROUPS, output_padding: Optional[str] = OUTPUT_PADDING,
    ints: bool = INTS, seed: int = SEED,
    png: Optional[str] = typer.Option(None, "--png", help="Also write C and C^T as pictures."),
    as_json: bool = JSON,
) -> None:
    """The forward convolution as a matrix C (o = C x) and its transpose, the backward pass.

    Row r of C holds the kernel taps that output cell r reads, column q the taps that read input
    cell q; taps that fall into the padding are not stored. The input gradient is C^T g, which is
    why the transposed convolution is the backward pass. Also runs the dot-product test
    <C x, y> = <x, C^T y> (exit code 1 if it fails).

    Example: tconv matrix --ints --png matrix.png
    """
    from ..explain import drawing, story
    from ..explain.text import grid

    with user_errors(as_json):
        if png:
            writable_file("--png", png)
        spec = spec_from(input, out_channels, kernel, stride, padding, dilation, groups,
                         output_padding)
        if png:
            drawing.require()
            drawing.check_dims(spec.ndim)
        _, w = story.sample_data(spec, ints=ints, seed=seed)
        view = story.matrix_view(spec, w)
    if as_json:
        print(json.dumps(view.to_dict()))
    else:
        from rich.text import Text

        out = new_console()
        out.print(f"[bold]tconv matrix[/bold]: {spec.describe()}")
        out.print(f"C has shape {view.c.shape} (C_out*prod(out), C_in*prod(in)); {view.nnz} "
                  f"of {view.c.size} entries stored ({view.nnz / view.c.size:.0%}). "
                  f"o = C x; dL/dx = C^T g.", highlight=False)
        kinds = np.where(view.taps > 0, "data", "empty")
        out.print(Text("C", style="underline"))
        out.print(grid(np.where(view.taps > 0, view.c, 0), kinds))
        dot = view.dot
        out.print(f"dot-product test <C x, y> = <x, C^T y>: {dot.lhs:g} = {dot.rhs:g}: "
                  f"{'passed' if dot.passed else 'FAILED'}", highlight=False)
    if png:
        path = write(drawing.save_matrix, view, png, as_json)
        if not as_json:
            print(f"wrote {path}")
    raise typer.Exit(0 if view.dot.passed else 1)
