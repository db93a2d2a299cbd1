"""``tconv shape``: the shape arithmetic of a convolution and its transpose, per dim."""
from __future__ import annotations

import json
from typing import Optional

from .common import (DILATION, GROUPS, INPUT, JSON, KERNEL, OUTPUT_PADDING, OUT_CHANNELS, PADDING,
                     STRIDE, new_console, spec_from, user_errors)


def command(
    input: str = INPUT, out_channels: int = OUT_CHANNELS, kernel: str = KERNEL,
    stride: str = STRIDE, padding: str = PADDING, dilation: str = DILATION,
    groups: int = GROUPS, output_padding: Optional[str] = OUTPUT_PADDING,
    as_json: bool = JSON,
) -> None:
    """The shape arithmetic of one convolution and its transpose, per spatial dim.

    Prints the forward output size and the transposed output size with their formulas filled
    in, the valid output_padding values (0 <= output_padding < max(stride, dilation)), and, for
    each, the size the transposed convolution produces. A strided convolution maps several input
    sizes to one output size (the floor); these rows are marked: output_padding is what tells
    the transposed convolution which one to restore.

    Example: tconv shape --input 1,1,7,8 --kernel 3 --stride 3 --padding 1
    """
    from ..explain import story

    with user_errors(as_json):
        spec = spec_from(input, out_channels, kernel, stride, padding, dilation, groups,
                         output_padding)
        facts = story.shape_facts(spec)
    if as_json:
        print(json.dumps(facts))
        return
    from rich.table import Table

    out = new_console()

    def print_per_dim(lines: list[str]) -> None:
        out.print(story.per_dim_text(lines), highlight=False)

    out.print(f"[bold]tconv shape[/bold]: {spec.describe()}")
    sizes = Table(title="sizes per spatial dim")
    for col in ("dim", "input", "kernel (extent K)", "stride", "padding low:high", "dilation",
                "output_padding", "forward output"):
        sizes.add_column(col)
    for d in facts["dims"]:
        sizes.add_row(str(d["dim"]), str(d["input"]), f"{d['kernel']} ({d['extent']})",
                      str(d["stride"]), f"{d['padding'][0]}:{d['padding'][1]}",
                      str(d["dilation"]), str(d["output_padding"]), str(d["output"]))
    out.print(sizes)
    print_per_dim([f"forward out = floor((in + pad_low + pad_high - K) / stride) + 1 = "
                   f"{d['forward_formula']}; transposed in = (out - 1)*stride - pad_low - pad_high "
                   f"+ K + output_padding = {d['transposed_formula']}" for d in facts["dims"]])
    choices = Table(title="every valid output_padding (0 <= output_padding < max(stride, "
                    "dilation)) and the transposed output it gives")
    for col in ("dim", "output_padding", "transposed output", "its forward output", "note"):
        choices.add_column(col)
    for d in facts["dims"]:
        for row in d["choices"]:
            note = []
            first, last = row["output_padding"]
            if first <= d["output_padding"] <= last:
                note.append("this spec's input")
            if row["size"] is None:
                note.append("invalid: the padding crops the whole output")
            elif row["collapses"]:
                note.append(f"collapses onto {d['output']}")
            else:
                note.append(f"allowed (< dilation), but the forward conv of "
                            f"{span(row['size'])} gives {span(row['forward_size'])}, not "
                            f"{d['output']}")
            choices.add_row(str(d["dim"]), span(row["output_padding"]),
                            "-" if row["size"] is None else span(row["size"]),
                            "-" if row["size"] is None else span(row["forward_size"]),
                            "; ".join(note))
    out.print(choices)
    runs = [d["input_sizes"] for d in facts["dims"]]
    print_per_dim([f"input sizes {story.sizes_text(run['first'], run['last'])} all give forward "
                   f"output {d['output']}; conv_transpose needs output_padding (or output_size) "
                   f"to know which one to produce." for run, d in zip(runs, facts["dims"])])


def span(pair) -> str:
    """``[3, 3]`` as ``3``, ``[0, 9999]`` as ``0..9999``."""
    first, last = pair
    return str(first) if first == last else f"{first}..{last}"
