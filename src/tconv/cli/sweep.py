"""``tconv sweep``: many drawn specs, every way on each, on this machine or a Dask cluster."""
from __future__ import annotations

import json
from typing import Optional

import typer

from .. import flags, frameworks
from . import engine_options
from .common import (at_least_one, backends_option, check_seed, fail, new_console, parse_dims,
                     red, user_errors, writable_file)


def command(
    count: int = typer.Option(200, help="How many specs to draw."),
    dims: str = typer.Option("1,2,3", help="Spatial dims to draw from, e.g. 2 or 1,2,3."),
    seed: int = typer.Option(0, help="Seed of the draw and of the data."),
    backends: Optional[str] = backends_option(),
    workers: int = engine_options.WORKERS,
    scheduler: Optional[str] = engine_options.SCHEDULER,
    out: Optional[str] = engine_options.OUT,
    resume: Optional[str] = engine_options.RESUME,
    timeout: float = typer.Option(
        300.0, help="Seconds one spec (every way) may take before it counts as hanging "
                    "(TIMEOUT); 0: no limit."),
    batch_size: Optional[int] = engine_options.BATCH_SIZE,
    dtype: str = typer.Option("float32", help="Data dtype."),
    json_file: Optional[str] = typer.Option(None, "--json", help="Write the full report here."),
) -> None:
    """Draw many specs, compute dL/dx every way on each, and shrink every disagreement.

    The specs cover 1-3 dims (or --dims), groups, dilation, asymmetric padding and
    output_padding. The summary counts, per way, how often it agreed with exact arithmetic,
    differed, differed in a documented way (KNOWN), could not express the spec (N/A), was refused
    by a converter (REFUSED) or crashed a converter's process (CRASH). Each way that differed or
    crashed gets a minimal failing spec and a ready-to-run `tconv verify` command. A spec that
    crashes tconv's own worker twice, raises or hangs is reported with its smallest form.
    Exit code 1 on any disagreement or problem, 130 when interrupted.

    Examples:

      tconv sweep --count 2000 --backends all --workers 2 --out run.jsonl

      tconv sweep --count 2000 --backends all --resume run.jsonl

      tconv sweep --count 100000 --scheduler tcp://10.0.0.5:8786 --out big.jsonl
    """
    from rich.table import Table

    from ..engine import SetupError
    from ..sweep import PROBLEMS, sweep

    as_json = json_file is not None
    with user_errors(as_json):
        names = frameworks.parse(backends)
        dims_ = parse_dims(dims)
        flags.dtype(dtype)
        at_least_one("--count", count)
        check_seed(seed)
        engine_options.check_options(workers, scheduler, timeout, batch_size, out, resume)
        if json_file:
            writable_file("--json", json_file)
    label = f"sweep ({', '.join(names) or 'tconv only'})"
    try:
        with engine_options.progress("sweep", label, count, out, resume,
                                     as_json) as (checkpoint, advance):
            report = sweep(count, seed=seed, dims=dims_, backends=names, dtype=dtype,
                           workers=workers, scheduler=scheduler, timeout=timeout or None,
                           sandbox=True, batch_size=batch_size, out=checkpoint,
                           resume=resume is not None, progress=advance)
    except SetupError as e:
        fail(f"the sweep could not start its workers: {e}", "--workers", as_json=as_json)
    out_ = new_console()
    resumed = f", {report.resumed} read from {checkpoint}" if report.resumed else ""
    table = Table(title=f"{report.count} specs, {report.dtype}, {report.seconds:.1f} s{resumed}")
    table.add_column("way", overflow="fold")
    for col in ("agreed", "differed", "known", "N/A", "refused", "crashed"):
        table.add_column(col, justify="right", no_wrap=True)
    for key, tally in report.tallies.items():
        table.add_row(key, str(tally["PASS"]), red(tally["FAIL"]), str(tally["KNOWN"]),
                      str(tally["N/A"]), str(tally["REFUSED"]), red(tally["CRASH"]))
    out_.print(table)
    if report.notes:
        out_.print("Most common reason per way (numbers elided; --json has them all):")
    for key, notes in report.notes.items():
        reason, n = notes.most_common(1)[0]
        out_.print(f"  {key} ({n}x): {reason}", highlight=False, markup=False)
    for d in report.disagreements:
        out_.print(f"[bold red]{d.key}[/] differs; minimal spec: {d.minimal.describe()}")
        if d.note:
            out_.print(f"  {d.note}", highlight=False, markup=False)
        out_.print(f"  repro: {d.command}", highlight=False, soft_wrap=True)
    for p in report.problems:
        out_.print(f"[bold red]{p.count} spec(s) {PROBLEMS[p.status]}[/] ({p.status}); "
                   f"first: {p.first.describe()}")
        out_.print(f"  {p.note}", highlight=False, markup=False)
        if p.minimal is not None:
            out_.print(f"  minimal spec: {p.minimal.describe()}, with "
                       f"{', '.join(p.backends) or 'tconv alone'}", highlight=False)
            out_.print(f"  repro: {p.command}", highlight=False, soft_wrap=True)
    if json_file:
        with open(json_file, "w") as f:
            json.dump(report.to_dict(), f, indent=2)
    out_.print("all agree" if report.passed else
               f"{len(report.disagreements)} way(s) disagree"
               + (f"; {sum(p.count for p in report.problems)} spec(s) crashed, raised or "
                  f"timed out" if report.problems else ""))
    raise typer.Exit(0 if report.passed else 1)
