"""Many specs at once: draw them, compute every way, tally, shrink each disagreement to a minimum.

``sweep`` draws specs with the hypothesis strategies the tests use, runs :func:`tconv.verify.verify`
on each through :mod:`tconv.engine` (in this process, in a sandbox process, or on a Dask
cluster), counts per way how often it agreed with exact arithmetic, differed, differed in a
documented way, or could not express the spec, and for every way that differed shrinks the
smallest failing spec greedily — fewer dims, batch, groups, channels, kernel, stride, dilation,
padding, size, output_padding — until no smaller spec fails. A spec that crashed the process
twice, raised, or timed out is a problem of its own (``CRASH``, ``ERROR``, ``TIMEOUT``); a crash
or an error is shrunk too, with the frameworks that take part in it.

Every spec's rows can stream into a checkpoint (:class:`tconv.engine.Checkpoint`, JSON Lines),
and a run resumed from it skips the specs it holds: the summary is always computed from the
records of every spec, in spec order, so a resumed run reports what an uninterrupted one does.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from . import engine
from . import flags
from .methods import METHODS
from .spec import ConvSpec, ConvSpecError
from .strategies import arrays_for, conv_specs
from .verify import Report, verify

STATUSES = ("PASS", "FAIL", "KNOWN", "N/A", "REFUSED", "CRASH")
#: The row statuses that are disagreements: shrunk, reported, and a failed sweep (a CRASH row is
#: a converter's process that died; a spec that crashed tconv's own worker is a problem below).
FAILING = ("FAIL", "CRASH")
#: What can happen to a whole spec instead of a row per way.
PROBLEMS = {engine.CRASH: "crashed the process", engine.ERROR: "raised",
            engine.TIMEOUT: "timed out"}


def way_key(name: str) -> str:
    """A way's name without its dimension (``F.conv_transpose2d`` -> ``F.conv_transposeNd``)."""
    return re.sub(r"\dd(?=\b|_)", "Nd", name)


def reason_kind(note: str) -> str:
    """A note with its numbers elided, so that notes of one kind count together."""
    return re.sub(r"\([^()]*(\([^()]*\)[^()]*)*\)|\b\d+\b", "…", note)


def draw_specs(count: int, seed: int, dims=(1, 2, 3), **strategy) -> list[ConvSpec]:
    """``count`` specs from :func:`tconv.strategies.conv_specs`, reproducibly from ``seed``."""
    import hypothesis
    from hypothesis import HealthCheck, Phase, given, settings

    specs: list[ConvSpec] = []

    @hypothesis.seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(conv_specs(dims=tuple(dims), **strategy))
    def collect(spec):
        specs.append(spec)

    collect()
    return specs[:count]


def evaluate(spec: ConvSpec, backends, dtype, seed: int, methods=METHODS) -> Report:
    """:func:`verify` on the spec with data drawn from ``seed``."""
    _, w, g = arrays_for(spec, seed, dtype)
    return verify(spec, w, g, methods=methods, backends=backends)


@dataclass(frozen=True)
class SweepJob(engine.Job):
    """:func:`evaluate` for the engine: an item is ``(spec, seed, backends, methods)`` (a subset
    of the job's backends, for shrinking; ``methods`` None for every one), the result one
    ``(source, way, status, note, max |diff|, bound)`` per row."""

    backends: tuple[str, ...]
    dtype: str

    def setup(self) -> None:
        """Import every framework once, on the smallest spec."""
        evaluate(ConvSpec.transpose((1, 1, 1), (1, 1, 1)), self.backends, self.dtype, 0)

    def run(self, item) -> list[tuple]:
        spec, seed, backends, methods = item
        rows = evaluate(spec, backends, self.dtype, seed,
                        methods=METHODS if methods is None else methods).rows
        return [(r.source, r.name, r.status, r.note, r.max_abs_diff, r.bound) for r in rows]


# -- shrinking ----------------------------------------------------------------------------------

def _rebuild(spec: ConvSpec, **change) -> ConvSpec | None:
    """``spec`` with some parameters replaced (transposed-conv parameters), or None if invalid."""
    p = dict(batch=spec.batch, c_in=spec.in_channels // spec.groups,
             c_out=spec.out_channels // spec.groups, groups=spec.groups, out=spec.output_size,
             kernel=spec.kernel_size, stride=spec.stride, dilation=spec.dilation,
             padding=spec.padding, output_padding=spec.output_padding)
    p.update(change)
    g = p["groups"]
    try:
        return ConvSpec.transpose(
            (p["batch"], g * p["c_out"]) + tuple(p["out"]), (g * p["c_out"], p["c_in"]) +
            tuple(p["kernel"]), stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
            groups=g, output_padding=p["output_padding"])
    except ConvSpecError:
        return None


def _smaller(spec: ConvSpec) -> Iterator[ConvSpec]:
    """Candidate specs one step simpler than ``spec``, the biggest simplifications first."""
    nd = spec.ndim
    per_dim = dict(out=spec.output_size, kernel=spec.kernel_size, stride=spec.stride,
                   dilation=spec.dilation, padding=spec.padding,
                   output_padding=spec.output_padding)
    if nd > 1:                                           # drop a spatial dim
        for dim in range(nd):
            yield _rebuild(spec, **{k: v[:dim] + v[dim + 1:] for k, v in per_dim.items()})
    if spec.batch > 1:
        yield _rebuild(spec, batch=1)
    if spec.groups > 1:
        yield _rebuild(spec, groups=1)
        if spec.groups > 2:
            yield _rebuild(spec, groups=spec.groups - 1)
    for name in ("c_in", "c_out"):
        current = (spec.in_channels if name == "c_in" else spec.out_channels) // spec.groups
        if current > 1:
            yield _rebuild(spec, **{name: 1})
            yield _rebuild(spec, **{name: current - 1})
    for dim in range(nd):
        def at(key, value, dim=dim):
            seq = list(per_dim[key])
            seq[dim] = value
            return _rebuild(spec, **{key: tuple(seq)})
        lo, hi = spec.padding[dim]
        for key, target in (("output_padding", 0), ("dilation", 1), ("stride", 1),
                            ("kernel", 1), ("out", 1)):
            value = per_dim[key][dim]
            if value > target:
                yield at(key, target)
                if value - 1 > target:
                    yield at(key, value - 1)
        for pair in ((0, 0), (min(lo, hi), min(lo, hi)), (max(lo - 1, 0), hi),
                     (lo, max(hi - 1, 0))):
            if pair != (lo, hi):
                yield at("padding", pair)


def size_of(spec: ConvSpec) -> tuple:
    """Order specs from simple to complex, for picking the smallest failure."""
    return (spec.ndim, int(np.prod(spec.input_shape)) + int(np.prod(spec.weight_shape)),
            sum(spec.stride) + sum(spec.dilation) + sum(map(sum, spec.padding)))


def shrink(spec: ConvSpec, fails: Callable[[ConvSpec], bool], budget: int = 400) -> ConvSpec:
    """Greedy: move to the first simpler spec that still fails, until none does."""
    tried: set[ConvSpec] = set()
    improved = True
    while improved and budget > 0:
        improved = False
        for candidate in _smaller(spec):
            if candidate is None or candidate in tried:
                continue
            tried.add(candidate)
            budget -= 1
            if fails(candidate):
                spec, improved = candidate, True
                break
            if budget <= 0:
                break
    return spec


# -- the sweep ----------------------------------------------------------------------------------

@dataclass
class Disagreement:
    """A way that differed from exact arithmetic (or a problem: a crash, an error), with the
    first and the minimal failing spec."""

    key: str
    source: str
    way: str
    first: ConvSpec
    minimal: ConvSpec
    note: str
    command: str

    def to_dict(self) -> dict:
        return {"way": self.key, "first_spec": self.first.describe(),
                "minimal_spec": self.minimal.describe(), "note": self.note,
                "repro": self.command}


@dataclass
class Problem:
    """Specs that crashed the process, raised or timed out: how many, the first (smallest) and,
    for crashes and errors, the minimal spec with the frameworks that take part."""

    status: str
    count: int
    first: ConvSpec
    note: str
    minimal: ConvSpec | None = None
    backends: list[str] | None = None
    command: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status, "what": PROBLEMS[self.status], "count": self.count,
                "first_spec": self.first.describe(), "note": self.note,
                "minimal_spec": self.minimal.describe() if self.minimal else None,
                "backends": self.backends, "repro": self.command or None}


@dataclass
class SweepReport:
    count: int
    seed: int
    dtype: str
    backends: list[str]
    seconds: float
    tallies: dict[str, Counter] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    notes: dict[str, Counter] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    resumed: int = 0   # specs read back from the checkpoint
    #: per spec: the spec and each way's status, for tables computed from a run
    records: list[tuple[ConvSpec, dict[str, str]]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.disagreements and not self.problems

    def to_dict(self) -> dict:
        return {"count": self.count, "seed": self.seed, "dtype": self.dtype,
                "backends": self.backends, "seconds": round(self.seconds, 2),
                "resumed": self.resumed, "passed": self.passed,
                "ways": {key: {s: tally.get(s, 0) for s in STATUSES}
                         | {"notes": dict(self.notes.get(key, Counter()).most_common(10))}
                         for key, tally in self.tallies.items()},
                "disagreements": [d.to_dict() for d in self.disagreements],
                "problems": [p.to_dict() for p in self.problems],
                "specs": [{"spec": spec.to_dict(), "status": status}
                          for spec, status in self.records]}


class _Tally:
    """The summary of a set of records, the same whatever order the specs arrive in: ways and
    notes are ordered by the first (spec, row) that shows them, the failure kept per way is the
    smallest spec, the first of equals."""

    def __init__(self, specs: list[ConvSpec]):
        self.specs = specs
        self.tallies: dict[str, Counter] = {}
        self.order: dict[str, tuple[int, int]] = {}
        self.notes: dict[str, dict[str, list]] = {}
        self.failures: dict[str, tuple] = {}
        self.problems: dict[str, dict] = {}
        self.statuses: dict[int, dict[str, str]] = {}    # spec -> way -> status

    def add(self, records: list[dict]) -> None:
        for pos, r in enumerate(records):
            i, status = r["spec"], r["status"]
            rank = (size_of(self.specs[i]), i)
            if status in PROBLEMS:
                p = self.problems.setdefault(status, {"count": 0, "first": None})
                p["count"] += 1
                if p["first"] is None or rank < p["first"][0]:
                    p["first"] = (rank, i, r["note"])
                continue
            key = way_key(r["way"])
            self.tallies.setdefault(key, Counter())[status] += 1
            self.order[key] = min(self.order.get(key, (i, pos)), (i, pos))
            if r["note"]:
                kind = reason_kind(r["note"])
                entry = self.notes.setdefault(key, {}).setdefault(kind, [0, (i, pos)])
                entry[0] += 1
                entry[1] = min(entry[1], (i, pos))
            self.statuses.setdefault(i, {})[key] = status
            if status in FAILING and (key not in self.failures or rank < self.failures[key][0]):
                self.failures[key] = (rank, i, r["source"], r["way"], r["note"])

    def into(self, report: SweepReport) -> None:
        report.records = [(self.specs[i], self.statuses[i]) for i in sorted(self.statuses)]
        for key in sorted(self.tallies, key=self.order.__getitem__):
            report.tallies[key] = Counter({s: n for s in STATUSES
                                           if (n := self.tallies[key][s])})
            notes = sorted(self.notes.get(key, {}).items(), key=lambda kv: (-kv[1][0], kv[1][1]))
            if notes:
                report.notes[key] = Counter(dict((kind, n) for kind, (n, _) in notes))


def _records(i: int, spec: ConvSpec, seed: int, outcome: engine.Outcome) -> list[dict]:
    fields = spec.to_dict()
    if outcome.status != engine.OK:
        return [{"spec": i, "seed": seed, "source": None, "way": None, "status": outcome.status,
                 "note": outcome.message, "max_abs_diff": None, "bound": None} | fields]
    return [{"spec": i, "seed": seed, "source": source, "way": way, "status": status,
             "note": note, "max_abs_diff": diff, "bound": bound} | fields
            for source, way, status, note, diff, bound in outcome.value]


def params(count: int, seed: int, dims, backends, dtype) -> dict:
    """What a checkpoint must agree on to be resumed (the draw depends on hypothesis's
    version, so that is part of it)."""
    import hypothesis

    return {"count": count, "seed": seed, "dims": list(dims), "backends": list(backends),
            "dtype": np.dtype(dtype).name, "hypothesis": hypothesis.__version__}


def sweep(count: int = 200, *, seed: int = 0, dims=(1, 2, 3), backends=(), dtype="float32",
          workers: int = 1, scheduler: str | None = None, timeout: float | None = None,
          sandbox: bool = False, batch_size: int | None = None, out: str | None = None,
          resume: bool = False, progress: Callable[[int], None] | None = None) -> SweepReport:
    """Run :func:`verify` on ``count`` drawn specs and shrink every disagreement.

    ``workers`` > 1 or ``scheduler`` run the specs on Dask (:class:`tconv.engine.Engine`), a
    ``timeout`` (seconds per spec) or ``sandbox`` in a sandbox process; otherwise they run in
    this process.
    ``out`` streams every spec's rows into a JSON Lines checkpoint; with ``resume`` the specs
    already in it are skipped (the file must come from a sweep with the same parameters).
    ``progress(n)`` is called after each spec with the number done so far.
    """
    start = time.perf_counter()
    dtype = np.dtype(dtype).name
    backends = list(backends)
    checkpoint = None
    if out is not None:
        checkpoint = engine.Checkpoint(out, "sweep", params(count, seed, dims, backends, dtype),
                                        resume=resume)
    try:
        job = SweepJob(tuple(backends), dtype)
        with engine.Engine(workers=workers, scheduler=scheduler, timeout=timeout,
                            batch_size=batch_size,
                            mode=engine.mode_for(workers, scheduler, timeout, sandbox)
                            ) as pool:
            pool.prepare(job)              # the workers import the frameworks meanwhile
            specs = draw_specs(count, seed, dims)
            report = SweepReport(len(specs), seed, dtype, backends, 0.0)
            tally = _Tally(specs)
            done: set[int] = set()
            if checkpoint is not None:
                for records in checkpoint.replay():
                    tally.add(records)
                done = set(checkpoint.done)
                report.resumed = len(done)
            if progress and done:
                progress(len(done))
            todo = [(i, (spec, seed + i, backends, None)) for i, spec in enumerate(specs)
                    if i not in done]
            for outcome in pool.map(job, todo, total=len(todo)):
                i = outcome.key
                records = _records(i, specs[i], seed + i, outcome)
                if checkpoint is not None:
                    checkpoint.add(i, records)
                tally.add(records)
                done.add(i)
                if progress:
                    progress(len(done))
            tally.into(report)
            for key, (_, i, source, name, note) in tally.failures.items():
                spec = specs[i]
                minimal = shrink(spec, lambda s: _fails(pool, job, s, source, key, seed + i))
                report.disagreements.append(Disagreement(
                    key, source, name, spec, minimal, note,
                    repro_command(minimal, source, dtype, seed + i)))
            for status in PROBLEMS:
                if status in tally.problems:
                    report.problems.append(_problem(pool, job, specs, seed, status,
                                                    tally.problems[status]))
    finally:
        if checkpoint is not None:
            checkpoint.close()
    report.seconds = time.perf_counter() - start
    return report


def _fails(pool: engine.Engine, job: SweepJob, spec: ConvSpec, source: str, key: str,
           seed: int) -> bool:
    methods = [m for m in METHODS if way_key(f"tconv {m}") == key]
    backends = [] if source == "tconv" else [source]
    outcome = pool.call(job, (spec, seed, backends, methods))
    return outcome.status == engine.OK and any(
        status in FAILING and way_key(name) == key for _, name, status, *_ in outcome.value)


def _problem(pool: engine.Engine, job: SweepJob, specs: list[ConvSpec], seed: int,
             status: str, found: dict) -> Problem:
    """The smallest spec with this problem; crashes and errors shrunk, frameworks first."""
    _, i, note = found["first"]
    problem = Problem(status, found["count"], specs[i], note)
    if status == engine.TIMEOUT:   # each try would cost the whole timeout
        return problem

    def fails(spec: ConvSpec, backends: tuple[str, ...]) -> bool:
        outcome = pool.call(SweepJob(backends, job.dtype),
                              (spec, seed + i, list(backends), None), retries=0)
        return outcome.status == status

    spec, backends = specs[i], tuple(job.backends)
    try:
        for name in job.backends:            # the frameworks that take part, fewest first
            fewer = tuple(b for b in backends if b != name)
            if fails(spec, fewer):
                backends = fewer
        spec = shrink(spec, lambda s: fails(s, backends), budget=200)
    except engine.SetupError:   # a framework that cannot even start: keep what we have
        pass
    problem.minimal, problem.backends = spec, list(backends)
    problem.command = flags.command(
        "tconv", "verify", *flags.spec_flags(spec), "--dtype", job.dtype, "--gradient",
        "random", "--seed", str(seed + i), "--backends", ",".join(backends) or "none")
    return problem


def repro_command(spec: ConvSpec, source: str, dtype: str, seed: int) -> str:
    """The ``tconv verify`` command that runs ``spec`` on the data the sweep drew from ``seed``."""
    backends = "none" if source == "tconv" else source
    return flags.command("tconv", "verify", *flags.spec_flags(spec), "--dtype", dtype,
                         "--gradient", "random", "--seed", str(seed), "--backends", backends)
