"""What ``tconv sweep`` and ``tconv check`` share: the engine's options, their checks, the
progress of a run and the message of an interrupted one (see :mod:`tconv.engine`)."""
from __future__ import annotations

import contextlib
import re
import shlex
import sys
from typing import Optional

import typer

from ..engine import SCHEDULER_ENV
from ..spec import ConvSpecError

WORKERS = typer.Option(1, "--workers", help="Worker processes. 1 (default) runs the specs in one "
                       "child process, no cluster; N > 1 starts a Dask LocalCluster of N worker "
                       "processes.")
SCHEDULER = typer.Option(None, "--scheduler", envvar=SCHEDULER_ENV, show_envvar=False,
                         help=f"tcp://HOST:PORT of a running Dask scheduler: run on its workers "
                              f"instead (default: ${SCHEDULER_ENV}). See docs/distributed.md.")
OUT = typer.Option(None, "--out", help="Stream every result into this JSON Lines file as it "
                   "arrives (one record per spec and way); refused if the file exists.")
RESUME = typer.Option(None, "--resume", help="Continue the run recorded in this file by --out "
                      "(same flags): skip its specs, append the rest; the summary covers all of "
                      "them. A missing file starts anew.")
BATCH_SIZE = typer.Option(None, "--batch-size", help="Specs per Dask task (default: sized from "
                          "the measured time, about 0.5 s each).")


def check_options(workers: int, scheduler: Optional[str], timeout: float,
                  batch_size: Optional[int], out: Optional[str], resume: Optional[str]) -> None:
    """Every engine option, before anything starts."""
    if workers < 1:
        raise ConvSpecError(f"--workers must be >= 1, got {workers}", "--workers")
    if scheduler is not None and not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+",
                                                  scheduler):
        raise ConvSpecError(f"--scheduler must look like tcp://HOST:PORT, got {scheduler!r}",
                            "--scheduler")
    if not timeout >= 0:
        raise ConvSpecError(f"--timeout must be >= 0 seconds (0: no limit), got {timeout}",
                            "--timeout")
    if batch_size is not None and batch_size < 1:
        raise ConvSpecError(f"--batch-size must be >= 1, got {batch_size}", "--batch-size")
    if out is not None and resume is not None:
        raise ConvSpecError(f"--out {out!r} and --resume {resume!r}: give one (--resume "
                            f"appends to its own file)", "--out")


def interrupted(done: int, total: int, checkpoint: Optional[str]) -> None:
    """Ctrl-C: say what was kept and how to go on, exit 130."""
    if checkpoint:
        words = []
        args = iter(sys.argv[1:])
        for word in args:   # the same command, with --resume FILE instead of --out FILE
            if word in ("--out", "--resume"):
                next(args, None)
            elif not word.startswith(("--out=", "--resume=")):
                words.append(word)
        again = shlex.join(["tconv", *words, "--resume", checkpoint])
        print(f"tconv: interrupted: {done} of {total} specs are in {checkpoint}; "
              f"continue with: {again}", file=sys.stderr)
    else:
        print(f"tconv: interrupted after {done} of {total} specs (nothing kept: --out FILE "
              f"keeps results to resume)", file=sys.stderr)
    raise typer.Exit(130)


@contextlib.contextmanager
def progress(what: str, label: str, count: int, out: Optional[str], resume: Optional[str],
             as_json: bool):
    """The body runs the specs under a progress bar and user_errors; yields the checkpoint
    file (``--out`` or ``--resume``) and ``advance(done, total=None)`` for the engine's
    progress callback. Ctrl-C ends the command with :func:`interrupted`."""
    from .common import progress_bar, user_errors

    checkpoint = out or resume
    note_new_resume(resume, what)
    done = [0]
    try:
        with user_errors(as_json), progress_bar() as bar:
            task = bar.add_task(label, total=count)

            def advance(n: int, total: Optional[int] = None) -> None:
                done[0] = n
                bar.update(task, completed=n, total=count if total is None else total)

            yield checkpoint, advance
    except KeyboardInterrupt:
        interrupted(done[0], count, checkpoint)


def note_new_resume(resume: Optional[str], what: str) -> None:
    import os

    if resume and not os.path.exists(resume):
        print(f"tconv: note: {resume} does not exist yet; starting a new {what} there",
              file=sys.stderr)
