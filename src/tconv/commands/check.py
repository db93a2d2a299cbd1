"""``tconv check``: a user's own transposed convolution against exact arithmetic."""
from __future__ import annotations

import json
import os
import sys
from typing import Optional

import typer
from rich.console import Console

from .. import flags
from ..spec import ConvSpecError
from . import engine_options as opts


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
    timeout: float = typer.Option(
        60.0, help="Seconds one call may take before the target counts as hanging (a "
                   "failure); 0: no limit."),
    keep_going: bool = typer.Option(
        False, "--keep-going", help="Check every spec and count the failures by kind, instead "
                                    "of stopping at the first."),
    workers: int = typer.Option(1, help=opts.WORKERS_HELP),
    scheduler: Optional[str] = opts.scheduler_option(),
    out: Optional[str] = typer.Option(None, "--out", help=opts.OUT_HELP),
    resume: Optional[str] = typer.Option(None, "--resume", help=opts.RESUME_HELP),
    batch_size: Optional[int] = opts.batch_option(),
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
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (errors too)."),
) -> None:
    """Check your own transposed convolution against exact arithmetic, and shrink a failure.

    TARGET has PyTorch's signature (any number of spatial dims), called positionally with
    tuples: fn(input, weight, bias, stride, padding, output_padding, groups, dilation) for
    torch-conv-transpose, fn(input_size, weight, grad_output, stride, padding, dilation, groups)
    for torch-input-grad. It runs in a process of its own (or on Dask workers), on copies of the
    arrays: writing to an argument, raising (sys.exit too), returning anything but an array of
    numbers of the right shape, hanging past --timeout or killing the process are failures. The
    specs start with the corners where real backends broke, then random ones. On a failure: the
    minimal failing spec, expected vs actual (shape first, then the first differing cells) and a
    repro command. Exit 1 on failure, 0 when all pass, 2 when TARGET cannot be imported.

    Example: tconv check my_conv.py:conv_transpose --count 500
    """
    from .. import check as checker

    try:
        if api not in checker.APIS:
            raise ConvSpecError(f"--api must be one of {', '.join(checker.APIS)}, got {api!r}")
        if arrays not in checker.ARRAYS:
            raise ConvSpecError(f"--arrays must be numpy or torch, got {arrays!r}")
        if count < 1:
            raise ConvSpecError(f"--count must be >= 1, got {count}")
        if seed < 0:
            raise ConvSpecError(f"--seed must be >= 0, got {seed}")
        flags.dtype(dtype)
        dims_ = opts.dims(dims)
        opts.check_engine(workers, scheduler, timeout, batch_size, out, resume)
        one = None
        if input is not None:
            one = flags.build_spec(input, out_channels, kernel, stride, padding, dilation,
                                   groups, output_padding)
            if not checker.expressible(one, api):
                raise ConvSpecError(f"--api {api} cannot express {one.describe()}")
        where, sep, name = target.rpartition(":")
        if not sep or not where or not name:
            raise ConvSpecError(f"TARGET must be module:function or path/to/file.py:function, "
                                f"got {target!r}")
        if (where.endswith(".py") or "/" in where) and not os.path.isfile(where):
            raise ConvSpecError(f"TARGET file {where!r} does not exist")
    except ConvSpecError as e:
        opts.fail(str(e), as_json)
    engine = dict(timeout=timeout or None, sandbox=True, workers=workers, scheduler=scheduler)
    console = Console()
    if one is not None:
        try:
            outcome = checker.check_one(None, target, api, one, dtype=dtype, seed=seed,
                                        arrays=arrays, **engine)
        except KeyboardInterrupt:
            opts.interrupted(0, 1, None)
        except ConvSpecError as e:
            opts.fail(str(e), as_json)
        result = {"spec": one.describe(), "passed": outcome.passed, "kind": outcome.kind,
                  "message": outcome.message}
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            console.print(f"{'PASS' if outcome.passed else 'FAIL'}: {one.describe()}")
            if outcome.message:
                console.print(f"  {outcome.message}", highlight=False, markup=False)
        raise typer.Exit(0 if outcome.passed else 1)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    checkpoint = out or resume
    if resume and not os.path.exists(resume):
        print(f"tconv: note: {resume} does not exist yet; starting a new check there",
              file=sys.stderr)
    done = [0]
    err = Console(stderr=True)
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), console=err, transient=True,
                      disable=not err.is_terminal) as bar:
            task = bar.add_task(f"check {target}", total=count)

            def advance(n: int, total: int) -> None:
                done[0] = n
                bar.update(task, completed=n, total=total)

            report = checker.check(None, target, api, count=count, seed=seed, dims=dims_,
                                   dtype=dtype, arrays=arrays, progress=advance,
                                   batch_size=batch_size, out=checkpoint,
                                   resume=resume is not None, keep_going=keep_going, **engine)
    except KeyboardInterrupt:
        opts.interrupted(done[0], count, checkpoint)
    except ConvSpecError as e:
        opts.fail(str(e), as_json)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    if report.passed:
        console.print(f"PASS: {report.checked} specs agree with exact arithmetic ({api})")
        raise typer.Exit(0)
    failed = sum(report.failures.values())
    kinds = ", ".join(f"{n} {kind}" for kind, n in report.failures.most_common())
    console.print(f"[bold red]FAIL[/] after {report.checked} specs" +
                  (f": {failed} failed ({kinds})" if keep_going else ""))
    console.print(f"  first failing spec: {report.first_failure.spec.describe()}")
    console.print(f"  minimal failing spec: {report.minimal.spec.describe()}")
    console.print(f"  {report.minimal.message}", highlight=False, markup=False)
    console.print(f"  repro: {report.command}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)
