"""``tconv explain``, ``shape``, ``overlap`` and ``matrix``: the teaching commands.

The data comes from :mod:`tconv.explain` (and :mod:`tconv.animation`); this module parses the
flags, prints with rich and hands ``--png`` / ``--gif`` to :mod:`tconv.drawing`.
"""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
import typer
from rich.columns import Columns
from rich.console import Console, Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .. import flags
from ..explain import drawing
from ..explain import story
from ..explain.animation import animate
from ..spec import ConvSpec, ConvSpecError

# -- the spec flags, as `tconv verify` spells them ------------------------------------------------

INPUT = typer.Option("1,1,4,4", "--input", help="Forward input shape N,C,*spatial (any dims).")
OUT_CHANNELS = typer.Option(1, "--out-channels", help="Output channels C_out.")
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
SEED = typer.Option(0, "--seed", help="Seed of the random x and w.")
JSON = typer.Option(False, "--json", help="Print the data as JSON instead.")


def _fail(message: str) -> None:
    from .app import _fail as fail   # imported here: cli imports this module

    fail(message)


def _spec(input, out_channels, kernel, stride, padding, dilation, groups,
          output_padding) -> ConvSpec:
    return flags.build_spec(input, out_channels, kernel, stride, padding, dilation, groups,
                            output_padding)


# -- arrays in the terminal -----------------------------------------------------------------------

STYLES = {"data": "bold", "inserted": "yellow", "padding": "bright_black",
          "output_padding": "bold dark_orange", "unread": "bold magenta", "empty": "bright_black"}
PHASE_STYLES = ["bold cyan", "bold green", "bold yellow", "bold magenta", "bold blue", "bold red"]
CROPPED_STYLE = "bright_black strike"
#: Largest slice printed as a grid; wider ones are printed by NumPy.
MAX_GRID_COLUMNS = 32


def _style(kind: str) -> str:
    if kind.startswith("phase"):
        return PHASE_STYLES[int(kind[5:]) % len(PHASE_STYLES)]
    return STYLES.get(kind, "")


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.2f}"
    return str(v)


def _grid(values, kinds=None, cropped=None):
    """One 1-d or 2-d slice as a borderless grid of styled numbers."""
    a = np.asarray(values)
    if a.ndim > 2 or (a.ndim == 2 and a.shape[1] > MAX_GRID_COLUMNS) or a.size > 1024:
        return Text(np.array2string(a, precision=2, suppress_small=True, threshold=1000))
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    k2 = None if kinds is None else np.asarray(kinds).reshape(a2.shape)
    c2 = None if cropped is None else np.asarray(cropped).reshape(a2.shape)
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    for _ in range(a2.shape[1]):
        table.add_column(justify="right")
    for r in range(a2.shape[0]):
        cells = []
        for c in range(a2.shape[1]):
            style = _style(str(k2[r, c])) if k2 is not None else ""
            if c2 is not None and c2[r, c]:
                style = CROPPED_STYLE
            cells.append(Text(_cell(a2[r, c]), style=style))
        table.add_row(*cells)
    return table


#: Slices of (N, C) printed per panel at most.
MAX_SLICES = 4


def _panel(panel: story.Panel):
    """A panel: its name and shape, then its slices."""
    head = Text(f"{panel.name} {tuple(panel.values.shape)}", style="underline")
    if panel.lead == 0:
        return Group(head, _grid(panel.values, panel.kinds, panel.cropped))
    parts = [head]
    lead = panel.values.shape[:2]
    for count, idx in enumerate(np.ndindex(*lead)):
        if count == MAX_SLICES:
            parts.append(Text(f"... {int(np.prod(lead)) - MAX_SLICES} more slices (--json)",
                              style="italic"))
            break
        if lead != (1, 1):
            parts.append(Text(f"[{idx[0]}, {idx[1]}]", style="italic"))
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        parts.append(_grid(panel.values[idx], pick(panel.kinds), pick(panel.cropped)))
    return Group(*parts)


def _legend(panels) -> Text | None:
    kinds = set()
    for p in panels:
        if p.kinds is not None:
            kinds |= set(np.unique(p.kinds))
    cropped = any(p.cropped is not None and p.cropped.any() for p in panels)
    if kinds <= {"data"} and not cropped:
        return None
    text = Text("legend: ", style="italic")
    for kind in sorted(kinds, key=lambda k: (k.startswith("phase"), k)):
        text.append("■ " + story.kind_label(kind), style=_style(kind))
        text.append("   ")
    if cropped:
        text.append("crossed out", style=CROPPED_STYLE)
        text.append(" = forward padding, cropped")
    return text


def print_explanation(console: Console, explanation: story.Explanation) -> None:
    """Every step: a rule with the title, the reasoning, the arrays side by side, a legend."""
    console.print(f"[bold]tconv explain[/bold]: {explanation.spec.describe()}", highlight=False)
    for number, step in enumerate(explanation.steps, 1):
        console.print(Rule(Text(f"{number}. {step.title}", style="bold"), align="left"))
        console.print(step.text, markup=False, highlight=False)
        if step.panels:
            console.print(Columns([_panel(p) for p in step.panels], padding=(1, 4)))
            legend = _legend(step.panels)
            if legend is not None:
                console.print(legend)


# -- the commands ---------------------------------------------------------------------------------

def explain(
    input: str = INPUT, out_channels: int = OUT_CHANNELS, kernel: str = KERNEL,
    stride: str = STRIDE, padding: str = PADDING, dilation: str = DILATION,
    groups: int = GROUPS, output_padding: Optional[str] = OUTPUT_PADDING,
    ints: bool = INTS, seed: int = SEED,
    png: Optional[str] = typer.Option(
        None, "--png", help="Also write one figure per step into this directory "
                            "(01-forward.png, ...; 1-d and 2-d specs)."),
    gif: Optional[str] = typer.Option(
        None, "--gif", help="Also write an animation of both views to this file: the scatter "
                            "(each g cell stamps the kernel) and zero insertion (the flipped "
                            "kernel slides over the stretched gradient); 1-d and 2-d specs."),
    as_json: bool = JSON,
) -> None:
    """Show, step by step, why the transposed convolution is the backward pass of a convolution.

    With no options it explains the original experiment: a 1x1x4x4 input, a 3x3 kernel,
    stride 2, padding 1, and the forward output o as the upstream gradient g. The steps: the
    forward output size (the formula filled in); the input cells the stride drops and the
    output_padding that restores them; the scatter definition of the backward pass; zero
    insertion; the padding dilation*(k-1) - padding with output_padding on the high side; the
    flipped kernel with its channels swapped; the ordinary convolution that gives dL/dx; the
    sub-pixel phases; and the matrix C, whose transpose is the backward pass. Every array is
    computed by tconv's own engine.

    Example: tconv explain --ints --gif out.gif
    """
    try:
        spec = _spec(input, out_channels, kernel, stride, padding, dilation, groups,
                     output_padding)
        explanation = story.explain(spec, ints=ints, seed=seed)
        animation = animate(spec, explanation.g, explanation.w) if gif else None
        if png or gif:
            drawing.require()
            drawing.check_dims(spec.ndim)
    except (ConvSpecError, drawing.PlotUnavailable) as e:
        _fail(str(e))
    if as_json:
        print(json.dumps(explanation.to_dict()))
    else:
        print_explanation(Console(), explanation)
    written = []
    if png:
        written += _write(drawing.save_steps, explanation, png)
    if gif:
        written += [_write(drawing.save_animation, animation, gif)]
    if written and not as_json:
        Console().print("wrote " + ", ".join(map(str, written)), highlight=False)


def _write(save, what, path):
    """Run one drawing writer; a file that cannot be written is one line on stderr, exit 2."""
    try:
        return save(what, path)
    except OSError as e:
        _fail(f"cannot write {e.filename}: {e.strerror}")


def shape(
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
    try:
        spec = _spec(input, out_channels, kernel, stride, padding, dilation, groups,
                     output_padding)
    except ConvSpecError as e:
        _fail(str(e))
    facts = story.shape_facts(spec)
    if as_json:
        print(json.dumps(facts))
        return
    console = Console()
    console.print(f"[bold]tconv shape[/bold]: {spec.describe()}")
    sizes = Table(title="sizes per spatial dim")
    for col in ("dim", "input", "kernel (extent K)", "stride", "padding low:high", "dilation",
                "output_padding", "forward output"):
        sizes.add_column(col)
    for d in facts["dims"]:
        sizes.add_row(str(d["dim"]), str(d["input"]), f"{d['kernel']} ({d['extent']})",
                      str(d["stride"]), f"{d['padding'][0]}:{d['padding'][1]}",
                      str(d["dilation"]), str(d["output_padding"]), str(d["output"]))
    console.print(sizes)
    console.print(story.per_dim_text(
        [f"forward out = floor((in + pad_low + pad_high - K) / stride) + 1 = "
         f"{d['forward_formula']}; transposed in = (out - 1)*stride - pad_low - pad_high + K + "
         f"output_padding = {d['transposed_formula']}" for d in facts["dims"]]),
        highlight=False)
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
                            f"{_span(row['size'])} gives {_span(row['forward_size'])}, not "
                            f"{d['output']}")
            choices.add_row(str(d["dim"]), _span(row["output_padding"]),
                            "-" if row["size"] is None else _span(row["size"]),
                            "-" if row["size"] is None else _span(row["forward_size"]),
                            "; ".join(note))
    console.print(choices)
    console.print(story.per_dim_text(
        [f"input sizes {story.sizes_text(d['input_sizes']['first'], d['input_sizes']['last'])} "
         f"all give forward output {d['output']}; conv_transpose needs output_padding (or "
         f"output_size) to know which one to produce." for d in facts["dims"]]),
        highlight=False)


def _span(pair) -> str:
    """``[3, 3]`` as ``3``, ``[0, 9999]`` as ``0..9999``."""
    first, last = pair
    return str(first) if first == last else f"{first}..{last}"


BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5"]


def _heat(counts: np.ndarray) -> Table | Text:
    """A text heatmap: each count on a blue background, darker for more taps."""
    a = counts.reshape(1, -1) if counts.ndim == 1 else counts
    if a.shape[1] > MAX_GRID_COLUMNS * 2 or a.size > 4096:   # too wide to colour: NumPy's summary
        return Text(np.array2string(counts, threshold=200, edgeitems=8, max_line_width=80))
    top = max(int(a.max()), 1)
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    for _ in range(a.shape[1]):
        table.add_column(justify="right")
    for row in a:
        table.add_row(*[Text(f"{v}", style=f"black on {BLUES[round(v / top * (len(BLUES) - 1))]}")
                        for v in row])
    return table


def overlap(
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
    try:
        if dims not in (1, 2):
            raise ConvSpecError(f"--dims must be 1 or 2, got {dims}")
        ov = story.overlap(flags.per_dim("--kernel", kernel), flags.per_dim("--stride", stride),
                           flags.per_dim("--dilation", dilation), dims=dims,
                           size=flags.per_dim("--size", size))
        if png:
            drawing.require()
    except (ConvSpecError, drawing.PlotUnavailable) as e:
        _fail(str(e))
    if as_json:
        print(json.dumps(ov.to_dict()))
    else:
        console = Console()
        console.print(f"[bold]tconv overlap[/bold]: kernel taps per output cell of a transposed "
                      f"convolution, kernel {ov.kernel}, stride {ov.stride}, dilation "
                      f"{ov.dilation}, input {ov.size} of ones -> output {ov.counts.shape}")
        console.print(_heat(ov.counts))
        console.print(story.overlap_summary(ov), highlight=False)
    if png:
        path = _write(drawing.save_overlap, ov, png)
        if not as_json:
            Console().print(f"wrote {path}", highlight=False)


def matrix(
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
    try:
        spec = _spec(input, out_channels, kernel, stride, padding, dilation, groups,
                     output_padding)
        _, w = story.sample_data(spec, ints=ints, seed=seed)
        view = story.matrix_view(spec, w)
        if png:
            drawing.require()
    except (ConvSpecError, drawing.PlotUnavailable) as e:
        _fail(str(e))
    if as_json:
        print(json.dumps(view.to_dict()))
    else:
        console = Console()
        console.print(f"[bold]tconv matrix[/bold]: {spec.describe()}")
        console.print(f"C has shape {view.c.shape} (C_out*prod(out), C_in*prod(in)); {view.nnz} "
                      f"of {view.c.size} entries stored ({view.nnz / view.c.size:.0%}). "
                      f"o = C x; dL/dx = C^T g.", highlight=False)
        kinds = np.where(view.taps > 0, "data", "empty")
        console.print(Text("C", style="underline"))
        console.print(_grid(np.where(view.taps > 0, view.c, 0), kinds))
        dot = view.dot
        console.print(f"dot-product test <C x, y> = <x, C^T y>: {dot.lhs:g} = {dot.rhs:g}: "
                      f"{'passed' if dot.passed else 'FAILED'}", highlight=False)
    if png:
        path = _write(drawing.save_matrix, view, png)
        if not as_json:
            Console().print(f"wrote {path}", highlight=False)
    raise typer.Exit(0 if view.dot.passed else 1)
