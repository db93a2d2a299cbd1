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
from . import flags
from ._arrays import flip_spatial, insert_zeros, pad_or_crop
from .forward import conv as forward_conv
from .spec import ConvSpecError
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
    output_padding: Optional[str] = typer.Option(
        None, "--output-padding", help="Only for output_padding >= stride (allowed below the "
        "dilation): the input rows past the last kernel placement. Normally derived."),
    dtype: str = typer.Option("float32", help="Data dtype: float16/32/64, int8..int64, uint*."),
    seed: int = typer.Option(0, help="Seed of the random data."),
    gradient: str = typer.Option(
        "forward", help="The upstream gradient: 'forward' uses o = conv(x, w), as the original "
                        "experiment; 'random' draws w and g from --seed as `tconv sweep` does, "
                        "so that a sweep's repro command meets the same numbers."),
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
        spec = flags.build_spec(input, out_channels, kernel, stride, padding, dilation, groups,
                                output_padding)
        data_dtype = flags.dtype(dtype)
        names = registry.parse(backends)
        _check_seed(seed)
        if gradient not in ("forward", "random"):
            raise ConvSpecError(f"--gradient must be 'forward' or 'random', got {gradient!r}")
    except ConvSpecError as e:
        _fail(str(e))
    if gradient == "random":
        from .strategies import arrays_for

        x, w, o = arrays_for(spec, seed, data_dtype)
    else:
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
        _show(console, "o = conv(x, w) = upstream gradient" if gradient == "forward"
                 else "o = the upstream gradient (random)", o)
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
    table.add_column("way", overflow="fold")
    for col in ("source", "max |diff|", "bound", "status", "note"):
        table.add_column(col, no_wrap=True)
    style = {"PASS": "green", "FAIL": "bold red", "N/A": "yellow", "KNOWN": "magenta"}
    notes: list[str] = []  # long reasons go below the table, numbered
    for row in report.rows:
        mark = ""
        if row.note:
            if row.note not in notes:
                notes.append(row.note)
            mark = f"[{notes.index(row.note) + 1}]"
        table.add_row(row.name, row.source, _num(row.max_abs_diff), _num(row.bound),
                      f"[{style[row.status]}]{row.status}[/]", mark)
    console.print(table)
    for i, note in enumerate(notes, 1):
        console.print(f"[{i}] {note}", highlight=False, markup=False)
    verdict = "all agree" if report.passed else "DISAGREEMENT"
    console.print(f"{verdict}: {sum(r.status == 'PASS' for r in report.rows)} pass, "
                  f"{sum(r.status == 'FAIL' for r in report.rows)} fail, "
                  f"{sum(r.status == 'KNOWN' for r in report.rows)} known differences, "
                  f"{sum(r.status == 'N/A' for r in report.rows)} not expressible")
    raise typer.Exit(0 if report.passed else 1)


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise ConvSpecError(f"--seed must be >= 0, got {seed}")


from .commands import check as check_command  # noqa: E402  (after verify in --help)
from .commands import sweep as sweep_command  # noqa: E402

app.command("sweep")(sweep_command.sweep)
app.command("check")(check_command.check)


@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="Small layers, 2 rounds: a smoke test."),
    dtypes: str = typer.Option("float32,float64", "--dtypes", help="Comma list of dtypes."),
    methods: str = typer.Option(
        "auto,fast_gemm,fast_polyphase,fast_polyphase_cf,gemm,polyphase,zero_insertion",
        help="Comma list of tconv methods ('all' for every one; scatter, commuted and matrix "
             "are slow on the large layers)."),
    ops: str = typer.Option(
        "input_grad,conv,weight_grad", "--ops",
        help="Comma list of operations: input_grad (the transposed convolution; --methods "
             "picks its methods), conv (the forward convolution) and weight_grad (its weight "
             "gradient); the last two time tconv's auto, direct and im2col."),
    repeats: int = typer.Option(5, help="Rounds per layer (each round times every candidate)."),
    layer: Optional[str] = typer.Option(None, help="Only layers whose name contains this."),
    frameworks: bool = typer.Option(True, help="Time PyTorch (and other installed backends)."),
    as_json: bool = typer.Option(False, "--json", help="Print the timings as JSON."),
) -> None:
    """Time tconv's methods beside PyTorch on the same layers, interleaved in one process.

    Each layer is a transposed convolution; for it, the input gradient (= that transposed
    convolution), the forward convolution it transposes and the weight gradient, all with the
    same multiply-adds. Prints, per layer, operation and dtype: median and min-max ms, GFLOP/s
    (2 x useful multiply-adds), the share of a NumPy GEMM timed in the same run, the ratio to
    PyTorch (conv_transpose, conv, nn.grad weight; 'torch autograd' includes the forward), and
    the peak extra memory NumPy allocated. Only ratios from one run mean anything: the machine
    may be busy, but it is busy for every candidate alike. Each library's candidates run
    together; when the library changes the bench pauses 0.2 s and makes one untimed call, since
    BLAS and OpenMP threads that still spin from the last call slow the next library's.

    Example: tconv bench --ops input_grad --dtypes float32 --layer U-Net --repeats 9
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from . import bench as bench_
    from .algorithms import METHODS

    try:
        names = list(METHODS) + ["auto"] if methods == "all" else [
            m.strip() for m in methods.split(",") if m.strip()]
        if not names:
            raise ConvSpecError(f"--methods names no method: {methods!r}")
        for m in names:
            if m != "auto" and m not in METHODS:
                raise ConvSpecError(f"--methods: {m!r} is not one of {('auto',) + METHODS}")
        op_names = [o.strip() for o in ops.split(",") if o.strip()]
        if not op_names or any(o not in bench_.OPS for o in op_names):
            raise ConvSpecError(f"--ops {ops!r}: each must be one of {bench_.OPS}")
        dts = [flags.dtype(d).name for d in dtypes.split(",")]
        if any(np.dtype(d).kind != "f" for d in dts):
            raise ConvSpecError(f"--dtypes must be float dtypes, got {dtypes!r}")
        chosen = [ly for ly in bench_.layers(quick) if layer is None or layer in ly.name]
        if not chosen:
            raise ConvSpecError(f"--layer {layer!r} matches no layer")
        if repeats < 1:
            raise ConvSpecError(f"--repeats must be >= 1, got {repeats}")
    except ConvSpecError as e:
        _fail(str(e))
    rounds = 2 if quick else repeats
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("bench", total=len(chosen) * len(op_names) * len(dts) * rounds)
        timings, gemm = bench_.run(chosen, dtypes=dts, methods=names, ops=op_names,
                                   repeats=rounds, frameworks=frameworks,
                                   progress=lambda: bar.advance(task))
    rows = []
    for t in timings:
        ref = next((r.median for r in timings if r.candidate == bench_.REFERENCE[t.op]
                    and (r.layer, r.op, r.dtype) == (t.layer, t.op, t.dtype)), None)
        rows.append(t.to_dict(gemm[t.dtype], ref))
    if as_json:
        print(json.dumps({"gemm_gflops": gemm, "timings": rows}, indent=2))
        return
    console = Console()
    console.print("NumPy GEMM in this run: " + ", ".join(
        f"{dt} {rate:.1f} GFLOP/s" for dt, rate in gemm.items()))
    from .cost import multiplies

    by_name = {ly.name: ly for ly in chosen}
    for (name, op, dt) in dict.fromkeys((r["layer"], r["op"], r["dtype"]) for r in rows):
        spec = by_name[name].spec
        zi, pp = multiplies(spec, "zero_insertion"), multiplies(spec, "polyphase")
        table = Table(title=f"{name}, {op}, {dt}", caption=(
            f"multiplies: zero_insertion {zi:,}, polyphase {pp:,} = 1/{zi / pp:g} "
            f"(prod(stride) = {int(np.prod(spec.stride))})" if op == "input_grad" else
            f"x torch: over {bench_.REFERENCE[op]}"))
        table.add_column("candidate", no_wrap=True)
        for col in ("ms", "min-max", "GFLOP/s", "of GEMM", "x torch", "MB"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in rows:
            if (r["layer"], r["op"], r["dtype"]) != (name, op, dt):
                continue
            table.add_row(r["candidate"], f"{r['median_ms']:.1f}",
                          f"{r['min_ms']:.1f}-{r['max_ms']:.1f}", f"{r['gflops']:.1f}",
                          f"{r['gemm_share']:.0%}", _num(r["ratio_to_torch"]),
                          "" if r["peak_extra_mb"] is None else f"{r['peak_extra_mb']:.1f}")
        console.print(table)


def _num(value) -> str:
    return "" if value is None else f"{value:.3g}"


from .commands import explain as explain_commands  # noqa: E402  (registered after app exists)

app.command("explain")(explain_commands.explain)
app.command("shape")(explain_commands.shape)
app.command("overlap")(explain_commands.overlap)
app.command("matrix")(explain_commands.matrix)

from .commands import convert as convert_command  # noqa: E402

app.command("convert")(convert_command.convert)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
