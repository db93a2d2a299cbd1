"""``tconv check``: a user's own transposed convolution against exact arithmetic."""
from __future__ import annotations

import json
from typing import Optional

import typer

from .. import flags
from ..spec import ConvSpecError
from .common import (DILATION, GROUPS, KERNEL, OUTPUT_PADDING, OUT_CHANNELS, PADDING, STRIDE,
                     at_least_one, check_seed, parse_dims, new_console, spec_from, user_errors)


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
    for torch-input-grad. The specs start with the corners where real backends broke, then
    random ones. On a failure: the minimal failing spec, expected vs actual (shape first, then
    the first differing cells) and a repro command. Exit 1 on failure, 0 when all pass.

    Example: tconv check my_conv.py:conv_transpose --count 500
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
        one = None
        if input is not None:
            one = spec_from(input, out_channels, kernel, stride, padding, dilation, groups,
                            output_padding)
            if not check.expressible(one, api):
                raise ConvSpecError(f"--api {api} cannot express {one.describe()}", "--api")
        fn = check.load_target(target)
    out = new_console()
    if one is not None:
        outcome = check.check_spec(fn, api, one, dtype=dtype, seed=seed, arrays=arrays)
        result = {"spec": one.describe(), "passed": outcome.passed, "message": outcome.message}
        if as_json:
            print(json.dumps(result, indent=2))
        else:
            out.print(f"{'PASS' if outcome.passed else 'FAIL'}: {one.describe()}")
            if outcome.message:
                out.print(f"  {outcome.message}", highlight=False)
        raise typer.Exit(0 if outcome.passed else 1)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  console=new_console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"check {target}", total=count)
        report = check.check(fn, target, api, count=count, seed=seed, dims=dims_, dtype=dtype,
                             arrays=arrays,
                             progress=lambda n, total: bar.update(task, completed=n,
                                                                    total=total))
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        raise typer.Exit(0 if report.passed else 1)
    if report.passed:
        out.print(f"PASS: {report.checked} specs agree with exact arithmetic ({api})")
        raise typer.Exit(0)
    out.print(f"[bold red]FAIL[/] after {report.checked} specs")
    out.print(f"  first failing spec: {report.first_failure.spec.describe()}")
    out.print(f"  minimal failing spec: {report.minimal.spec.describe()}")
    out.print(f"  {report.minimal.message}", highlight=False)
    out.print(f"  repro: {report.command}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)
