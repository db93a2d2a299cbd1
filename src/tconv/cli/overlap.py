"""``tconv overlap``: how many kernel taps land on each output cell (the checkerboard)."""
from __future__ import annotations

import json
from typing import Optional

import typer

from .. import flags
from ..spec import ConvSpecError
from .common import JSON, new_console, user_errors, writable_file
from .explain import write


def command(
    kernel: str = typer.Option("3", "--kernel", help="Kernel size: one int or one per dim."),
    stride: str = typer.Option("2", "--stride", help="Stride: one int or one per dim."),
    dilation: str = typer.Option("1", "--dilation", help="Dilation: one int or one per dim."),
    dims: int = typer.Option(2, "--dims", help="Spatial dims of the map: 1 or 2."),
    size: str = typer.Option("6", "--size", help="Input cells per dim (one int or one per dim)."),
    png: Optional[str] = typer.Option(None, "--png", help="Also write the map as a PNG."),
    as_json: bool = JSON,
) -> None:
    """How many kernel taps the transposed convolution adds into each output cell.

    A transposed convolution of an input of ones with a kernel of ones (no padding) counts the
    kernel copies that overlap on each output cell. When the kernel size is not divisible by
    the stride the counts alternate (2 1 2 1 ... for kernel 3, stride 2): a trained layer's
    output inherits that period as a checkerboard (Odena et al. 2016, "Deconvolution and
    checkerboard artifacts"). The command says whether the overlap is even and which kernel
    sizes would make it even.

    Example: tconv overlap --kernel 3 --stride 2 --png overlap.png
    """
    from ..explain import drawing, story
    from ..explain.text import heat

    with user_errors(as_json):
        if png:
            writable_file("--png", png)
        if dims not in (1, 2):
            raise ConvSpecError(f"--dims must be 1 or 2, got {dims}", "--dims")
        ov = story.overlap(flags.per_dim("--kernel", kernel, 1),
                           flags.per_dim("--stride", stride, 1),
                           flags.per_dim("--dilation", dilation, 1), dims=dims,
                           size=flags.per_dim("--size", size, 1))
        if png:
            drawing.require()
    if as_json:
        print(json.dumps(ov.to_dict()))
    else:
        out = new_console()
        out.print(f"[bold]tconv overlap[/bold]: kernel taps per output cell of a transposed "
                  f"convolution, kernel {ov.kernel}, stride {ov.stride}, dilation "
                  f"{ov.dilation}, input {ov.size} of ones -> output {ov.counts.shape}")
        out.print(heat(ov.counts))
        out.print(story.overlap_summary(ov), highlight=False)
    if png:
        path = write(drawing.save_overlap, ov, png, as_json)
        if not as_json:
            print(f"wrote {path}")
