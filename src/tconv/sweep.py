"""Many specs at once: draw them, compute every way, tally, shrink each disagreement to a minimum.

``sweep`` draws specs with the hypothesis strategies the tests use, runs :func:`tconv.verify.verify`
on each (in worker processes if asked), counts per way how often it agreed with exact
arithmetic, differed, differed in a documented way, could not express the spec, was refused by a
converter or crashed its process, and for every way that differed or crashed shrinks the
smallest failing spec greedily — fewer dims, batch, groups, channels, kernel, stride, dilation,
padding, size, output_padding — until no smaller spec fails.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from . import flags
from .methods import METHODS
from .spec import ConvSpec, ConvSpecError
from .strategies import arrays_for, conv_specs
from .verify import Report, Row, verify

STATUSES = ("PASS", "FAIL", "KNOWN", "N/A", "REFUSED", "CRASH")
#: The statuses that are disagreements: shrunk, reported, and a failed sweep.
FAILING = ("FAIL", "CRASH")


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


def _task(args) -> list[tuple[str, str, str, str]]:
    spec, backends, dtype, seed = args
    return [(row.source, row.name, row.status, row.note)
            for row in evaluate(spec, backends, dtype, seed).rows]


# -- shrinking ----------------------------------------------------------------------------------

def _rebuild(spec: ConvSpec, **change) -> ConvSpec | None:
    """``spec`` with some parameters replaced (by transposed-conv parameters), or None if invalid."""
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
    """A way that differed from exact arithmetic, with the first and the minimal failing spec."""

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
class SweepReport:
    count: int
    seed: int
    dtype: str
    backends: list[str]
    seconds: float
    tallies: dict[str, Counter] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    notes: dict[str, Counter] = field(default_factory=dict)
    #: per spec drawn: the spec and each way's status, for tables computed from a run
    records: list[tuple[ConvSpec, dict[str, str]]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.disagreements

    def to_dict(self) -> dict:
        return {"count": self.count, "seed": self.seed, "dtype": self.dtype,
                "backends": self.backends, "seconds": round(self.seconds, 2),
                "passed": self.passed,
                "ways": {key: {s: tally.get(s, 0) for s in STATUSES}
                         | {"notes": dict(self.notes.get(key, Counter()).most_common(10))}
                         for key, tally in self.tallies.items()},
                "disagreements": [d.to_dict() for d in self.disagreements],
                "specs": [{"spec": spec_dict(spec), "status": status}
                          for spec, status in self.records]}


def spec_dict(spec: ConvSpec) -> dict:
    """The fields that rebuild ``spec`` with :meth:`ConvSpec.forward` (JSON-ready)."""
    return {"input_shape": list(spec.input_shape), "weight_shape": list(spec.weight_shape),
            "stride": list(spec.stride), "padding": [list(p) for p in spec.padding],
            "dilation": list(spec.dilation), "groups": spec.groups,
            "output_padding": list(spec.output_padding)}


def spec_from_dict(d: dict) -> ConvSpec:
    """The inverse of :func:`spec_dict`."""
    return ConvSpec.forward(d["input_shape"], d["weight_shape"], stride=d["stride"],
                            padding=[tuple(p) for p in d["padding"]], dilation=d["dilation"],
                            groups=d["groups"], output_padding=d["output_padding"])


def sweep(count: int = 200, *, seed: int = 0, dims=(1, 2, 3), backends=(), dtype="float32",
          workers: int = 1, progress: Callable[[int], None] | None = None) -> SweepReport:
    """Run :func:`verify` on ``count`` drawn specs and shrink every disagreement.

    ``progress(n)`` is called after each spec with the number done so far.
    """
    start = time.perf_counter()
    specs = draw_specs(count, seed, dims)
    dtype = np.dtype(dtype).name
    tasks = [(spec, list(backends), dtype, seed + i) for i, spec in enumerate(specs)]
    report = SweepReport(len(specs), seed, dtype, list(backends), 0.0)
    failures: dict[str, list[tuple[ConvSpec, int, str, str, str]]] = {}

    def record(i: int, rows) -> None:
        statuses = {}
        for source, name, status, note in rows:
            key = way_key(name)
            statuses[key] = status
            report.tallies.setdefault(key, Counter())[status] += 1
            if note:
                report.notes.setdefault(key, Counter())[reason_kind(note)] += 1
            if status in FAILING:
                failures.setdefault(key, []).append((specs[i], i, source, name, note))
        report.records.append((specs[i], statuses))
        if progress:
            progress(i + 1)

    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for i, rows in enumerate(pool.map(_task, tasks, chunksize=2)):
                record(i, rows)
    else:
        for i, task in enumerate(tasks):
            record(i, _task(task))

    for key, failed in failures.items():
        spec, i, source, name, note = min(failed, key=lambda f: size_of(f[0]))
        minimal = shrink(spec, lambda s: _fails(s, source, key, dtype, seed + i))
        report.disagreements.append(Disagreement(
            key, source, name, spec, minimal, note,
            repro_command(minimal, source, dtype, seed + i)))
    report.seconds = time.perf_counter() - start
    return report


def _fails(spec: ConvSpec, source: str, key: str, dtype: str, seed: int) -> bool:
    methods = [m for m in METHODS if way_key(f"tconv {m}") == key]
    backends = [] if source == "tconv" else [source]
    rows: list[Row] = evaluate(spec, backends, dtype, seed, methods=methods).rows
    return any(row.status in FAILING and way_key(row.name) == key for row in rows)


def repro_command(spec: ConvSpec, source: str, dtype: str, seed: int) -> str:
    """The ``tconv verify`` command that runs ``spec`` on the data the sweep drew from ``seed``."""
    backends = "none" if source == "tconv" else source
    return flags.command("tconv", "verify", *flags.spec_flags(spec), "--dtype", dtype,
                         "--gradient", "random", "--seed", str(seed), "--backends", backends)
