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


def _check_writable(path: str) -> None:
    """Fail before a long run, not after it, when the report cannot be written."""
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise ConvSpecError(f"--json {path!r} cannot be written: {e.strerror}") from None


def _dims(text: str) -> tuple[int, ...]:
    dims = flags.ints("--dims", text)
    if any(d < 1 for d in dims):
        raise ConvSpecError(f"--dims must be >= 1, got {text!r}")
    return dims


@app.command()
def sweep(
    count: int = typer.Option(200, help="How many specs to draw."),
    dims: str = typer.Option("1,2,3", help="Spatial dims to draw from, e.g. 2 or 1,2,3."),
    seed: int = typer.Option(0, help="Seed of the draw and of the data."),
    backends: Optional[str] = typer.Option(
        None, help=f"Comma list of {', '.join(registry.BACKENDS)}, 'all' or 'none' "
                   "(default: the installed ones)."),
    workers: int = typer.Option(1, help="Worker processes."),
    dtype: str = typer.Option("float32", help="Data dtype."),
    json_file: Optional[str] = typer.Option(None, "--json", help="Write the full report here."),
) -> None:
    """Draw many specs, compute dL/dx every way on each, and shrink every disagreement.

    The specs cover 1-3 dims (or --dims), groups, dilation, asymmetric padding and
    output_padding. The summary counts, per way, how often it agreed with exact arithmetic,
    differed, differed in a documented way (KNOWN) or could not express the spec (N/A). Each way
    that differed gets a minimal failing spec and a ready-to-run `tconv verify` command.
    Exit code 1 on any disagreement.

    Example: tconv sweep --count 2000 --backends all --workers 2
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from .sweep import sweep as run_sweep

    try:
        names = registry.parse(backends)
        dims_ = _dims(dims)
        flags.dtype(dtype)
        if count < 1 or workers < 1:
            raise ConvSpecError(f"--count and --workers must be >= 1, got {count} and {workers}")
        _check_seed(seed)
        if json_file:
            _check_writable(json_file)
    except ConvSpecError as e:
        _fail(str(e))
    console = Console()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"sweep ({', '.join(names) or 'tconv only'})", total=count)
        report = run_sweep(count, seed=seed, dims=dims_, backends=names, dtype=dtype,
                           workers=workers, progress=lambda n: bar.update(task, completed=n))
    table = Table(title=f"{report.count} specs, {report.dtype}, {report.seconds:.1f} s")
    table.add_column("way", overflow="fold")
    for col in ("agreed", "differed", "known", "N/A"):
        table.add_column(col, justify="right", no_wrap=True)
    for key, tally in report.tallies.items():
        table.add_row(key, str(tally["PASS"]), _red(tally["FAIL"]), str(tally["KNOWN"]),
                      str(tally["N/A"]))
    console.print(table)
    console.print("Most common reason per way (numbers elided; --json has them all):")
    for key, notes in report.notes.items():
        reason, count = notes.most_common(1)[0]
        console.print(f"  {key} ({count}x): {reason}", highlight=False, markup=False)
    for d in report.disagreements:
        console.print(f"[bold red]{d.key}[/] differs; minimal spec: {d.minimal.describe()}")
        if d.note:
            console.print(f"  {d.note}")
        console.print(f"  repro: {d.command}", highlight=False, soft_wrap=True)
    if json_file:
        with open(json_file, "w") as f:
            json.dump(report.to_dict(), f, indent=2)
    console.print("all agree" if report.passed else
                  f"{len(report.disagreements)} way(s) disagree")
    raise typer.Exit(0 if report.passed else 1)


@app.command()
def check(
    target: str = typer.Argument(..., help="module:function or path/to/file.py:function."),
    api: str = typer.Option("torch-conv-transpose", help="torch-conv-transpose (the signature "
                            "of F.conv_transpose2d) or torch-input-grad (torch.nn.grad."
                            "conv2d_input's)."),
    count: int = typer.Option(200, help="How many specs to try."),
    seed: int = typer.Option(0, help="Seed of the draw and of the data."),
    dims: str = typer.Option("1,2,3", help="Spatial dims to try."),
    dtype: str = typer.Option("float64", help="Data dtype passed to the target."),
    arrays: str = typer.Option("numpy", help="Pass numpy arrays or torch tensors."),
    input: Optional[str] = typer.Option(None, "--input", help="Check one spec only: x's shape "
                                        "N,C,*spatial (with the flags below, as in verify)."),
    out_channels: int = typer.Option(1, "--out-channels", help="With --input: C_out."),
    kernel: str = typer.Option("3", help="With --input: kernel size, one or one per dim."),
    stride: str = typer.Option("1", help="With --input: stride."),
    padding: str = typer.Option("0", help="With --input: symmetric padding (PyTorch's)."),
    dilation: str = typer.Option("1", help="With --input: dilation."),
    groups: int = typer.Option(1, help="With --input: groups."),
    output_padding: Optional[str] = typer.Option(
        None, "--output-padding", help="With --input: only for output_padding >= stride."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check your own transposed convolution against exact arithmetic, and shrink a failure.

    TARGET has PyTorch's signature (any number of spatial dims), called positionally with
    tuples: fn(input, weight, bias, stride, padding, output_padding, groups, dilation) for
    torch-conv-transpose, fn(input_size, weight, grad_output, stride, padding, dilation, groups)
    for torch-input-grad. The specs start with the corners where real backends broke, then
    random ones. On a failure: the minimal failing spec, expected vs actual (shape first, then
    the first differing cells) and a repro command. Exit 1 on failure, 0 when all pass.

    Example: tconv check my_conv.py:conv_transpose --count 500
    """
    from . import check as checker

    try:
        if api not in checker.APIS:
            raise ConvSpecError(f"--api must be one of {', '.join(checker.APIS)}, got {api!r}")
        if arrays not in checker.ARRAYS:
            raise ConvSpecError(f"--arrays must be numpy or torch, got {arrays!r}")
        if count < 1:
            raise ConvSpecError(f"--count must be >= 1, got {count}")
        _check_seed(seed)
        flags.dtype(dtype)
        dims_ = _dims(dims)
        one = None
        if input is not None:
            one = flags.build_spec(input, out_channels, kernel, stride, padding, dilation,
                                   groups, output_padding)
            if not checker.expressible(one, api):
                raise ConvSpecError(f"--api {api} cannot express {one.describe()}")
        fn = checker.load_target(target)
    except ConvSpecError as e:
        _fail(str(e))
    console = Console()
    if one is not None:
        outcome = checker.check_spec(fn, api, one, dtype=dtype, seed=seed, arrays=arrays)
        result = {"spec": one.describe(), "passed": outcome.passed, "message": outcome.message}
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            console.print(f"{'PASS' if outcome.passed else 'FAIL'}: {one.describe()}")
            if outcome.message:
                console.print(f"  {outcome.message}", highlight=False)
        raise typer.Exit(0 if outcome.passed else 1)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"check {target}", total=count)
        report = checker.check(fn, target, api, count=count, seed=seed, dims=dims_, dtype=dtype,
                               arrays=arrays,
                               progress=lambda n, total: bar.update(task, completed=n,
                                                                    total=total))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    if report.passed:
        console.print(f"PASS: {report.checked} specs agree with exact arithmetic ({api})")
        raise typer.Exit(0)
    console.print(f"[bold red]FAIL[/] after {report.checked} specs")
    console.print(f"  first failing spec: {report.first_failure.spec.describe()}")
    console.print(f"  minimal failing spec: {report.minimal.spec.describe()}")
    console.print(f"  {report.minimal.message}", highlight=False)
    console.print(f"  repro: {report.command}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="Small layers, 2 rounds: a smoke test."),
    dtypes: str = typer.Option("float32,float64", "--dtypes", help="Comma list of dtypes."),
    methods: str = typer.Option(
        None, help="Comma list of tconv methods of the input gradient (default: auto, the fast "
                   "methods, gemm, polyphase, zero_insertion; 'all' for every one; scatter, "
                   "commuted and matrix are slow on the large layers)."),
    ops: str = typer.Option(
        "input_grad,conv,weight_grad", "--ops",
        help="Comma list of operations: input_grad (the transposed convolution; --methods "
             "picks its methods), conv (the forward convolution) and weight_grad (its weight "
             "gradient); the last two time tconv's auto, direct, im2col and fast_native."),
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

    if methods is None:
        methods = ",".join(bench_.DEFAULT_METHODS)
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
        ref = next((r for r in timings if r.candidate == bench_.REFERENCE[t.op]
                    and (r.layer, r.op, r.dtype) == (t.layer, t.op, t.dtype)), None)
        rows.append(t.to_dict(gemm[t.dtype], ref and ref.median,
                              ref and ref.times and min(ref.times)))
    from .hardware import describe, one_line

    hardware = describe()
    if as_json:
        print(json.dumps({"hardware": hardware, "gemm_gflops": gemm, "timings": rows}, indent=2))
        return
    console = Console()
    console.print(one_line(hardware), markup=False)
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
            label = r["candidate"] + (f" ({r['runs']})" if r.get("runs") else "")
            table.add_row(label, f"{r['median_ms']:.1f}",
                          f"{r['min_ms']:.1f}-{r['max_ms']:.1f}", f"{r['gflops']:.1f}",
                          f"{r['gemm_share']:.0%}", _num(r["ratio_to_torch"]),
                          "" if r["peak_extra_mb"] is None else f"{r['peak_extra_mb']:.1f}")
        console.print(table)


def _red(n: int) -> str:
    return f"[bold red]{n}[/]" if n else "0"


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
