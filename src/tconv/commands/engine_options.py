"""What ``tconv sweep`` and ``tconv check`` share: the engine's flags, their checks, the
one-line errors (JSON too), and the message of an interrupted run."""
from __future__ import annotations

import json
import re
import shlex
import sys
from typing import Optional

import typer

from .. import flags
from ..engine import SCHEDULER_ENV
from ..spec import ConvSpecError

WORKERS_HELP = ("Worker processes. 1 (default) runs the specs in one child process, no cluster; "
                "N > 1 starts a Dask LocalCluster of N worker processes.")
SCHEDULER_HELP = (f"tcp://HOST:PORT of a running Dask scheduler: run on its workers instead "
                  f"(default: ${SCHEDULER_ENV}). See docs/distributed.md.")
OUT_HELP = ("Stream every result into this JSON Lines file as it arrives (one record per spec "
            "and way); refused if the file exists.")
RESUME_HELP = ("Continue the run recorded in this file by --out (same flags): skip its specs, "
               "append the rest; the summary covers all of them. A missing file starts anew.")
BATCH_HELP = "Specs per Dask task (default: sized from the measured time, about 0.5 s each)."


def scheduler_option():
    return typer.Option(None, "--scheduler", envvar=SCHEDULER_ENV, show_envvar=False,
                        help=SCHEDULER_HELP)


def batch_option():
    return typer.Option(None, "--batch-size", help=BATCH_HELP)


def dims(text: str) -> tuple[int, ...]:
    values = flags.ints("--dims", text)
    if any(d < 1 for d in values):
        raise ConvSpecError(f"--dims must be >= 1, got {text!r}")
    return values


def check_engine(workers: int, scheduler: Optional[str], timeout: float,
                 batch_size: Optional[int], out: Optional[str], resume: Optional[str]) -> None:
    """Every engine flag, before anything starts."""
    if workers < 1:
        raise ConvSpecError(f"--workers must be >= 1, got {workers}")
    if scheduler is not None and not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+",
                                                  scheduler):
        raise ConvSpecError(f"--scheduler must look like tcp://HOST:PORT, got {scheduler!r}")
    if not timeout >= 0:
        raise ConvSpecError(f"--timeout must be >= 0 seconds (0: no limit), got {timeout}")
    if batch_size is not None and batch_size < 1:
        raise ConvSpecError(f"--batch-size must be >= 1, got {batch_size}")
    if out is not None and resume is not None:
        raise ConvSpecError(f"--out {out!r} and --resume {resume!r}: give one (--resume "
                            f"appends to its own file)")


def check_writable(flag: str, path: str) -> None:
    """Fail before a long run, not after it, when a report cannot be written."""
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise ConvSpecError(f"{flag} {path!r} cannot be written: {e.strerror}") from None


def parameter(message: str) -> Optional[str]:
    """The flag (or TARGET) a one-line error is about: the first one it names."""
    found = re.search(r"--[a-z][a-z-]*|\bTARGET\b", message)
    return found.group(0) if found else None


def fail(message: str, as_json: bool = False) -> None:
    """A user mistake: one line on stderr (and with --json the same as JSON on stdout), exit 2."""
    message = " ".join(message.split())
    if as_json:
        print(json.dumps({"error": message, "parameter": parameter(message)}))
    print(f"tconv: error: {message}", file=sys.stderr)
    raise typer.Exit(2)


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
