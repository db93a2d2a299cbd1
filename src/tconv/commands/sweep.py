"""``tconv sweep``: many drawn specs, every way, on this machine or a Dask cluster."""
from __future__ import annotations

import json
import os
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .. import backends as registry
from .. import flags
from ..spec import ConvSpecError
from . import engine_options as opts


def sweep(
    count: int = typer.Option(200, help="How many specs to draw."),
    dims: str = typer.Option("1,2,3", help="Spatial dims to draw from, e.g. 2 or 1,2,3."),
    seed: int = typer.Option(0, help="Seed of the draw and of the data."),
    backends: Optional[str] = typer.Option(
        None, help=f"Comma list of {', '.join(registry.BACKENDS)}, 'all' or 'none' "
                   "(default: the installed ones)."),
    workers: int = typer.Option(1, help=opts.WORKERS_HELP),
    scheduler: Optional[str] = opts.scheduler_option(),
    out: Optional[str] = typer.Option(None, "--out", help=opts.OUT_HELP),
    resume: Optional[str] = typer.Option(None, "--resume", help=opts.RESUME_HELP),
    timeout: float = typer.Option(
        300.0, help="Seconds one spec (every way) may take before it counts as hanging "
                    "(TIMEOUT); 0: no limit."),
    batch_size: Optional[int] = opts.batch_option(),
    dtype: str = typer.Option("float32", help="Data dtype."),
    json_file: Optional[str] = typer.Option(None, "--json", help="Write the full report here."),
) -> None:
    """Draw many specs, compute dL/dx every way on each, and shrink every disagreement.

    The specs cover 1-3 dims (or --dims), groups, dilation, asymmetric padding and
    output_padding. The summary counts, per way, how often it agreed with exact arithmetic,
    differed, differed in a documented way (KNOWN) or could not express the spec (N/A). Each way
    that differed gets a minimal failing spec and a ready-to-run `tconv verify` command. A spec
    that crashes the process twice (CRASH), raises (ERROR) or hangs (TIMEOUT) is reported with
    its smallest form. Exit code 1 on any disagreement or problem, 130 when interrupted.

    Example: tconv sweep --count 2000 --backends all --workers 2 --out run.jsonl
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from ..engine import SetupError
    from ..sweep import PROBLEMS
    from ..sweep import sweep as run_sweep

    try:
        names = registry.parse(backends)
        dims_ = opts.dims(dims)
        flags.dtype(dtype)
        if count < 1:
            raise ConvSpecError(f"--count must be >= 1, got {count}")
        if seed < 0:
            raise ConvSpecError(f"--seed must be >= 0, got {seed}")
        opts.check_engine(workers, scheduler, timeout, batch_size, out, resume)
        if json_file:
            opts.check_writable("--json", json_file)
    except ConvSpecError as e:
        opts.fail(str(e))
    checkpoint = out or resume
    if resume and not os.path.exists(resume):
        print(f"tconv: note: {resume} does not exist yet; starting a new sweep there",
              file=sys.stderr)
    console = Console()
    done = [0]

    def advance(n: int) -> None:
        done[0] = n
        bar.update(task, completed=n)

    err = Console(stderr=True)
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                      transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task(f"sweep ({', '.join(names) or 'tconv only'})", total=count)
            report = run_sweep(count, seed=seed, dims=dims_, backends=names, dtype=dtype,
                               workers=workers, scheduler=scheduler, timeout=timeout or None,
                               sandbox=True, batch_size=batch_size, out=checkpoint,
                               resume=resume is not None, progress=advance)
    except KeyboardInterrupt:
        opts.interrupted(done[0], count, checkpoint)
    except SetupError as e:
        opts.fail(f"the sweep could not start its workers: {e}")
    except ConvSpecError as e:
        opts.fail(str(e))
    resumed = f", {report.resumed} read from {checkpoint}" if report.resumed else ""
    table = Table(title=f"{report.count} specs, {report.dtype}, {report.seconds:.1f} s{resumed}")
    table.add_column("way", overflow="fold")
    for col in ("agreed", "differed", "known", "N/A"):
        table.add_column(col, justify="right", no_wrap=True)
    for key, tally in report.tallies.items():
        table.add_row(key, str(tally["PASS"]), _red(tally["FAIL"]), str(tally["KNOWN"]),
                      str(tally["N/A"]))
    console.print(table)
    if report.notes:
        console.print("Most common reason per way (numbers elided; --json has them all):")
    for key, notes in report.notes.items():
        reason, n = notes.most_common(1)[0]
        console.print(f"  {key} ({n}x): {reason}", highlight=False, markup=False)
    for d in report.disagreements:
        console.print(f"[bold red]{d.key}[/] differs; minimal spec: {d.minimal.describe()}")
        if d.note:
            console.print(f"  {d.note}", highlight=False, markup=False)
        console.print(f"  repro: {d.command}", highlight=False, soft_wrap=True)
    for p in report.problems:
        console.print(f"[bold red]{p.count} spec(s) {PROBLEMS[p.status]}[/] ({p.status}); "
                      f"first: {p.first.describe()}")
        console.print(f"  {p.note}", highlight=False, markup=False)
        if p.minimal is not None:
            console.print(f"  minimal spec: {p.minimal.describe()}, with "
                          f"{', '.join(p.backends) or 'tconv alone'}", highlight=False)
            console.print(f"  repro: {p.command}", highlight=False, soft_wrap=True)
    if json_file:
        with open(json_file, "w") as f:
            json.dump(report.to_dict(), f, indent=2)
    console.print("all agree" if report.passed else
                  f"{len(report.disagreements)} way(s) disagree"
                  + (f"; {sum(p.count for p in report.problems)} spec(s) crashed, raised or "
                     f"timed out" if report.problems else ""))
    raise typer.Exit(0 if report.passed else 1)


def _red(n: int) -> str:
    return f"[bold red]{n}[/]" if n else "0"
