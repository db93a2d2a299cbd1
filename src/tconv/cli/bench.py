"""``tconv bench``: tconv's methods beside PyTorch (and JAX) on the same layers."""
from __future__ import annotations

import json
from typing import Optional

import numpy as np
import typer

from .. import flags
from ..spec import ConvSpecError
from .common import at_least_one, new_console, number, progress_bar, user_errors


def command(
    quick: bool = typer.Option(False, "--quick", help="Small layers, 2 rounds: a smoke test."),
    dtypes: str = typer.Option("float32,float64", "--dtypes", help="Comma list of dtypes."),
    methods: Optional[str] = typer.Option(
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
    from rich.table import Table

    from .. import bench
    from ..methods import METHODS

    if methods is None:
        methods = ",".join(bench.DEFAULT_METHODS)
    with user_errors(as_json):
        names = list(METHODS) + ["auto"] if methods == "all" else [
            m.strip() for m in methods.split(",") if m.strip()]
        if not names:
            raise ConvSpecError(f"--methods names no method: {methods!r}", "--methods")
        for m in names:
            if m != "auto" and m not in METHODS:
                raise ConvSpecError(f"--methods: {m!r} is not one of {('auto',) + METHODS}",
                                    "--methods")
        op_names = [o.strip() for o in ops.split(",") if o.strip()]
        if not op_names or any(o not in bench.OPS for o in op_names):
            raise ConvSpecError(f"--ops {ops!r}: each must be one of {bench.OPS}", "--ops")
        dts = [flags.dtype(d).name for d in dtypes.split(",")]
        if any(np.dtype(d).kind != "f" for d in dts):
            raise ConvSpecError(f"--dtypes must be float dtypes, got {dtypes!r}", "--dtypes")
        chosen = [ly for ly in bench.layers(quick) if layer is None or layer in ly.name]
        if not chosen:
            raise ConvSpecError(f"--layer {layer!r} matches no layer", "--layer")
        at_least_one("--repeats", repeats)
    rounds = 2 if quick else repeats
    with progress_bar() as bar:
        task = bar.add_task("bench", total=len(chosen) * len(op_names) * len(dts) * rounds)
        timings, gemm = bench.run(chosen, dtypes=dts, methods=names, ops=op_names,
                                  repeats=rounds, frameworks=frameworks,
                                  progress=lambda: bar.advance(task))
    rows = []
    for t in timings:
        ref = next((r for r in timings if r.candidate == bench.REFERENCE[t.op]
                    and (r.layer, r.op, r.dtype) == (t.layer, t.op, t.dtype)), None)
        rows.append(t.to_dict(gemm[t.dtype], ref and ref.median,
                              ref and ref.times and min(ref.times)))
    from ..hardware import describe, one_line

    hardware = describe()
    if as_json:
        print(json.dumps({"hardware": hardware, "gemm_gflops": gemm, "timings": rows}, indent=2))
        return
    out = new_console()
    out.print(one_line(hardware), markup=False)
    out.print("NumPy GEMM in this run: " + ", ".join(
        f"{dt} {rate:.1f} GFLOP/s" for dt, rate in gemm.items()))
    from ..methods.auto import multiplies

    by_name = {ly.name: ly for ly in chosen}
    for (name, op, dt) in dict.fromkeys((r["layer"], r["op"], r["dtype"]) for r in rows):
        spec = by_name[name].spec
        zi, pp = multiplies(spec, "zero_insertion"), multiplies(spec, "polyphase")
        table = Table(title=f"{name}, {op}, {dt}", caption=(
            f"multiplies: zero_insertion {zi:,}, polyphase {pp:,} = 1/{zi / pp:g} "
            f"(prod(stride) = {int(np.prod(spec.stride))})" if op == "input_grad" else
            f"x torch: over {bench.REFERENCE[op]}"))
        table.add_column("candidate", no_wrap=True)
        for col in ("ms", "min-max", "GFLOP/s", "of GEMM", "x torch", "MB"):
            table.add_column(col, justify="right", no_wrap=True)
        for r in rows:
            if (r["layer"], r["op"], r["dtype"]) != (name, op, dt):
                continue
            label = r["candidate"] + (f" ({r['runs']})" if r.get("runs") else "")
            table.add_row(label, f"{r['median_ms']:.1f}",
                          f"{r['min_ms']:.1f}-{r['max_ms']:.1f}", f"{r['gflops']:.1f}",
                          f"{r['gemm_share']:.0%}", number(r["ratio_to_torch"]),
                          "" if r["peak_extra_mb"] is None else f"{r['peak_extra_mb']:.1f}")
        out.print(table)
