"""``tconv sweep``: many drawn specs, every way on each, every disagreement shrunk."""
from __future__ import annotations

import json
from typing import Optional

import typer

from .. import flags
from .. import frameworks
from .common import (at_least_one, backends_option, check_seed, new_console, parse_dims, red,
                     user_errors, writable_file)


def command(
    count: int = typer.Option(200, help="How many specs to draw."),
    dims: str = typer.Option("1,2,3", help="Spatial dims to draw from, e.g. 2 or 1,2,3."),
    seed: int = typer.Option(0, help="Seed of the draw and of the data."),
    backends: Optional[str] = backends_option(),
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

    from ..sweep import sweep

    with user_errors(json_file is not None):
        names = frameworks.parse(backends)
        dims_ = parse_dims(dims)
        flags.dtype(dtype)
        at_least_one("--count", count)
        at_least_one("--workers", workers)
        check_seed(seed)
        if json_file:
            writable_file("--json", json_file)
    from rich.table import Table

    out = new_console()
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=new_console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"sweep ({', '.join(names) or 'tconv only'})", total=count)
        report = sweep(count, seed=seed, dims=dims_, backends=names, dtype=dtype,
                       workers=workers, progress=lambda n: bar.update(task, completed=n))
    table = Table(title=f"{report.count} specs, {report.dtype}, {report.seconds:.1f} s")
    table.add_column("way", overflow="fold")
    for col in ("agreed", "differed", "known", "N/A", "refused", "crashed"):
        table.add_column(col, justify="right", no_wrap=True)
    for key, tally in report.tallies.items():
        table.add_row(key, str(tally["PASS"]), red(tally["FAIL"]), str(tally["KNOWN"]),
                      str(tally["N/A"]), str(tally["REFUSED"]), red(tally["CRASH"]))
    out.print(table)
    out.print("Most common reason per way (numbers elided; --json has them all):")
    for key, notes in report.notes.items():
        reason, count = notes.most_common(1)[0]
        out.print(f"  {key} ({count}x): {reason}", highlight=False, markup=False)
    for d in report.disagreements:
        out.print(f"[bold red]{d.key}[/] differs; minimal spec: {d.minimal.describe()}")
        if d.note:
            out.print(f"  {d.note}")
        out.print(f"  repro: {d.command}", highlight=False, soft_wrap=True)
    if json_file:
        with open(json_file, "w") as f:
            json.dump(report.to_dict(), f, indent=2)
    out.print("all agree" if report.passed else
              f"{len(report.disagreements)} way(s) disagree")
    raise typer.Exit(0 if report.passed else 1)
