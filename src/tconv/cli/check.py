"""``tconv check``: a user's own transposed convolution against exact arithmetic."""
from __future__ import annotations

import json
import os
from typing import Optional

import typer

from .. import flags
from ..spec import ConvSpecError
from . import engine_options
from .common import (DILATION, GROUPS, KERNEL, OUT_CHANNELS, OUTPUT_PADDING, PADDING, STRIDE,
                     at_least_one, check_seed, new_console, parse_dims, spec_from,
                     user_errors)


def command(
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
    workers: int = engine_options.WORKERS,
    scheduler: Optional[str] = engine_options.SCHEDULER,
    out: Optional[str] = engine_options.OUT,
    resume: Optional[str] = engine_options.RESUME,
    batch_size: Optional[int] = engine_options.BATCH_SIZE,
    input: Optional[str] = typer.Option(None, "--input", help="Check one spec only: x's shape "
                                        "N,C,*spatial, with the spec options as in verify."),
    out_channels: int = OUT_CHANNELS, kernel: str = KERNEL, stride: str = STRIDE,
    padding: str = PADDING, dilation: str = DILATION, groups: int = GROUPS,
    output_padding: Optional[str] = OUTPUT_PADDING,
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

    Examples:

      tconv check my_conv.py:conv_transpose --count 500

      tconv check my_pkg.ops:input_grad --api torch-input-grad --arrays torch --keep-going
    """
    from .. import check

    with user_errors(as_json):
        if api not in check.APIS:
            raise ConvSpecError(f"--api must be one of {', '.join(check.APIS)}, got {api!r}",
                                "--api")
        if arrays not in check.ARRAYS:
            raise ConvSpecError(f"--arrays must be numpy or torch, got {arrays!r}", "--arrays")
        at_least_one("--count", count)
        check_seed(seed)
        flags.dtype(dtype)
        dims_ = parse_dims(dims)
        engine_options.check_options(workers, scheduler, timeout, batch_size, out, resume)
        one = None
        if input is not None:
            one = spec_from(input, out_channels, kernel, stride, padding, dilation, groups,
                            output_padding)
            if not check.expressible(one, api):
                raise ConvSpecError(f"--api {api} cannot express {one.describe()}", "--api")
        where, sep, name = target.rpartition(":")
        if not sep or not where or not name:
            raise ConvSpecError(f"TARGET must be module:function or path/to/file.py:function, "
                                f"got {target!r}", "TARGET")
        if (where.endswith(".py") or "/" in where) and not os.path.isfile(where):
            raise ConvSpecError(f"TARGET file {where!r} does not exist", "TARGET")
    options = dict(timeout=timeout or None, sandbox=True, workers=workers, scheduler=scheduler)
    out_ = new_console()
    if one is not None:
        try:
            with user_errors(as_json):
                outcome = check.check_one(None, target, api, one, dtype=dtype, seed=seed,
                                          arrays=arrays, **options)
        except KeyboardInterrupt:
            engine_options.interrupted(0, 1, None)
        result = {"spec": one.describe(), "passed": outcome.passed, "kind": outcome.kind,
                  "message": outcome.message}
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            out_.print(f"{'PASS' if outcome.passed else 'FAIL'}: {one.describe()}")
            if outcome.message:
                out_.print(f"  {outcome.message}", highlight=False, markup=False)
        raise typer.Exit(0 if outcome.passed else 1)
    with engine_options.progress("check", f"check {target}", count, out, resume,
                                 as_json) as (checkpoint, advance):
        report = check.check(None, target, api, count=count, seed=seed, dims=dims_,
                             dtype=dtype, arrays=arrays, progress=advance,
                             batch_size=batch_size, out=checkpoint,
                             resume=resume is not None, keep_going=keep_going, **options)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    if report.passed:
        out_.print(f"PASS: {report.checked} specs agree with exact arithmetic ({api})")
        raise typer.Exit(0)
    failed = sum(report.failures.values())
    kinds = ", ".join(f"{n} {kind}" for kind, n in report.failures.most_common())
    out_.print(f"[bold red]FAIL[/] after {report.checked} specs" +
               (f": {failed} failed ({kinds})" if keep_going else ""))
    out_.print(f"  first failing spec: {report.first_failure.spec.describe()}")
    out_.print(f"  minimal failing spec: {report.minimal.spec.describe()}")
    out_.print(f"  {report.minimal.message}", highlight=False, markup=False)
    out_.print(f"  repro: {report.command}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)
