"""The sweep's own speed: specs per second through tconv.engine, against one process.

    python benchmarks/engine.py [--count 300] [--rounds 3] [--ways tconv,all] [--json]

For each set of ways (``tconv``: the nine tconv methods; ``all``: those and every installed
framework's ways), each round draws fresh specs (so a framework's compile caches are as cold as
in a real sweep) and runs the same specs

* ``one process``: :class:`tconv.sweep.SweepJob` called in a loop in this process;
* ``two processes``: the same loop in two bare processes, each on half the specs (what this
  machine gives two workers, with no engine at all);
* ``sandbox``: the engine with one worker and no cluster (what ``tconv sweep`` does by default);
* ``dask 1`` and ``dask 2``: a Dask ``LocalCluster`` of one and of two worker processes.

Every process computes on one thread per framework, as tconv.engine's sandboxes do. Every
engine is started, and its sandboxes set up (frameworks imported), before the clock starts;
start-up is timed on its own. The modes of a round run back to back, and the medians over
rounds give the wall-time ``overhead`` (engine time / one-process time - 1; dask 2 against two
processes) and the ``speed-up`` (dask 1 time / dask 2 time, beside one process / two). On a
machine that other work shares, wall times measure the share of the cores a mode got as much
as the mode itself; the CPU time of every process that works for a mode (this one, with the
client and a LocalCluster's scheduler; the workers; the sandboxes) does not, and gives the
``cpu_overhead``: what the engine costs on top of the work. With a job that returns a real
spec's rows and computes nothing, all the CPU is the engine's own: ``engine_cost`` gives it per
spec, as a share of the CPU one spec's real work takes. A last table times a tiny run (20
specs) end to end, start-up and shut-down included, in each mode.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.pool
import os
import statistics
import sys
import time

import psutil

# one thread of computation per process in every mode, as tconv.engine gives its sandboxes
# (tconv.engine.ONE_THREAD): a worker's throughput is then that of one core. Set before NumPy
# and the frameworks are imported.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
    os.environ.setdefault(_var, "1")
if "multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen"
                               "=false intra_op_parallelism_threads=1").strip()

from tconv import frameworks
from tconv import engine as engines
from tconv.sweep import SweepJob, draw_specs

MODES = ("one process", "two processes", "sandbox", "dask 1", "dask 2")
WORKERS = {"one process": 1, "two processes": 2, "sandbox": 1, "dask 1": 1, "dask 2": 2}
_JOB = None


def _init(backends) -> None:
    """A bare worker process of the ``two processes`` mode: the job, set up."""
    global _JOB
    _JOB = SweepJob(backends, "float32")
    _JOB.setup()


def _run_chunk(items) -> int:
    for _, item in items:
        _JOB.run(item)
    return len(items)


def _items(specs, seed, backends):
    return [(i, (s, seed + i, list(backends), None)) for i, s in enumerate(specs)]


def _engine(mode: str) -> engines.Engine:
    if mode == "sandbox":
        return engines.Engine(mode="local")
    return engines.Engine(mode="dask", workers=int(mode.split()[1]))


def _processes(engine, job) -> list[psutil.Process]:
    """The processes that work for a mode: this one (the client, and the scheduler of a
    LocalCluster), the Dask workers, the sandboxes; or the bare pool's processes."""
    procs = [psutil.Process()]
    if engine is None:
        return procs
    if isinstance(engine, multiprocessing.pool.Pool):
        return procs + [psutil.Process(p.pid) for p in engine._pool]
    if engine.mode == "local":
        pids = [engines._sandbox(engine._bytes(job)).proc.pid]
    else:
        pids = list(engine.client.run(os.getpid).values())
    for pid in pids:
        p = psutil.Process(pid)
        procs += [p] + p.children(recursive=True)
    return procs


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def _ready(engine: engines.Engine, job) -> None:
    """Start the sandboxes and wait until every one has set up."""
    engine.prepare(job)
    if engine.mode == "dask":
        engine.client.gather(engine._warming)
    else:
        engines._sandbox(engine._bytes(job)).wait_ready()


def run(count: int, rounds: int, way_sets: list[str]) -> dict:
    results = {}
    for ways in way_sets:
        backends = () if ways == "tconv" else tuple(frameworks.installed())
        job = SweepJob(backends, "float32")
        job.setup()                                  # the one-process mode, warmed alike
        times = {m: [] for m in MODES}
        cpu = {m: [] for m in MODES}
        started = {}
        live = {}
        pool = multiprocessing.get_context("spawn").Pool(2, _init, (backends,))
        pool.map(_run_chunk, [[], []], chunksize=1)           # both started and set up
        live["two processes"] = pool
        for m in MODES[2:]:
            t = time.perf_counter()
            live[m] = _engine(m).__enter__()
            _ready(live[m], job)
            started[m] = time.perf_counter() - t
        try:
            for r in range(rounds):
                seed = 1000 * (r + 1)
                items = _items(draw_specs(count, seed), seed, backends)
                for m in MODES:
                    procs = _processes(live.get(m), job)
                    c, t = _cpu(procs), time.perf_counter()
                    if m == "one process":
                        for _, item in items:
                            job.run(item)
                    elif m == "two processes":
                        assert sum(pool.map(_run_chunk, [items[0::2], items[1::2]],
                                            chunksize=1)) == len(items)
                    else:
                        n = sum(1 for _ in live[m].map(job, items, total=len(items)))
                        assert n == len(items)
                    times[m].append(time.perf_counter() - t)
                    cpu[m].append(_cpu(procs) - c)
                    print(f"  {ways} round {r + 1} {m}: {times[m][-1]:.2f} s, "
                          f"cpu {cpu[m][-1]:.2f} s", file=sys.stderr)
        finally:
            for e in live.values():
                e.close()
            pool.join()
        median = {m: statistics.median(ts) for m, ts in times.items()}
        median_cpu = {m: statistics.median(ts) for m, ts in cpu.items()}
        workers = WORKERS
        results[ways] = {
            "backends": list(backends), "count": count, "rounds": rounds,
            "seconds": {m: [round(t, 3) for t in ts] for m, ts in times.items()},
            "cpu_seconds": {m: [round(t, 3) for t in ts] for m, ts in cpu.items()},
            "specs_per_s_per_worker": {m: round(count / median[m] / workers[m], 1)
                                       for m in MODES},
            "specs_per_cpu_s": {m: round(count / median_cpu[m], 1) for m in MODES},
            "overhead": {m: round(median[m] / median["one process"] - 1, 4)
                         for m in ("sandbox", "dask 1")},
            "cpu_overhead": {m: round(median_cpu[m] / median_cpu["one process"] - 1, 4)
                             for m in ("sandbox", "dask 1")},
            "overhead_2": round(median["dask 2"] / median["two processes"] - 1, 4),
            "cpu_overhead_2": round(median_cpu["dask 2"] / median_cpu["two processes"] - 1, 4),
            "speedup_2_workers": round(median["dask 1"] / median["dask 2"], 3),
            "speedup_2_bare_processes": round(median["one process"] / median["two processes"],
                                              3),
            "startup_s": {m: round(t, 2) for m, t in started.items()},
        }
    return results


class CannedJob(SweepJob):
    """Returns one real spec's rows for every spec, computing nothing: what is left of a run is
    the engine's own cost, with the items and results of a real sweep."""

    def __init__(self, backends, rows):
        super().__init__(backends, "float32")
        object.__setattr__(self, "rows", rows)

    def setup(self) -> None:
        pass

    def run(self, item):
        return self.rows


def engine_cost(count: int, way_sets: list[str]) -> dict:
    """CPU microseconds per spec that the engine itself spends (client, worker, sandbox), with a
    job that computes nothing, against the CPU a spec's real work takes in one process."""
    out = {}
    for ways in way_sets:
        backends = () if ways == "tconv" else tuple(frameworks.installed())
        specs = draw_specs(count, 99)
        items = _items(specs, 99, backends)
        real = SweepJob(backends, "float32")
        real.setup()
        start = _cpu([psutil.Process()])
        for _, item in items[:200]:
            rows = real.run(item)
        work = (_cpu([psutil.Process()]) - start) / 200
        job = CannedJob(backends, rows)
        row = {"work_us_per_spec": round(work * 1e6)}
        for m in ("sandbox", "dask 1", "dask 2"):
            with _engine(m) as engine:
                _ready(engine, job)
                procs = _processes(engine, job)
                c = _cpu(procs)
                assert sum(1 for _ in engine.map(job, items, total=len(items))) == len(items)
                cost = (_cpu(procs) - c) / len(items)
            row[m] = {"engine_us_per_spec": round(cost * 1e6, 1),
                      "share_of_work": round(cost / work, 4)}
        out[ways] = row
    return out


def tiny(count: int = 20) -> dict:
    """A whole small run, start to end, per mode: is a cluster worth starting?"""
    specs = draw_specs(count, 7)
    out = {}
    for backends in ((), ("torch",)):
        job = SweepJob(backends, "float32")
        items = _items(specs, 7, backends)
        row = {}
        for m in ("one process", "sandbox", "dask 1", "dask 2"):
            t = time.perf_counter()
            if m == "one process":
                engine = engines.Engine(mode="inline")
            else:
                engine = _engine(m)
            with engine:
                n = sum(1 for _ in engine.map(job, items, total=len(items)))
            assert n == count
            row[m] = round(time.perf_counter() - t, 2)
        out[",".join(backends) or "tconv"] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ways", default="tconv,all")
    parser.add_argument("--cost-count", type=int, default=20000,
                        help="specs for the engine's own cost (a job that computes nothing)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {"throughput": run(args.count, args.rounds, args.ways.split(",")),
              "engine_cost": engine_cost(args.cost_count, args.ways.split(",")),
              "tiny_run_s": tiny()}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for ways, r in result["throughput"].items():
        print(f"\n{ways} ways ({', '.join(r['backends']) or 'no framework'}), {r['count']} "
              f"specs x {r['rounds']} rounds")
        print("| mode | specs/s per worker | wall time vs one process | specs per CPU-second "
              "| CPU time vs one process | start-up s |")
        print("|---|---|---|---|---|---|")
        r["overhead"]["dask 2"], r["cpu_overhead"]["dask 2"] = r["overhead_2"], r["cpu_overhead_2"]
        for m in MODES:
            over, cover = r["overhead"].get(m), r["cpu_overhead"].get(m)
            print(f"| {m} | {r['specs_per_s_per_worker'][m]} | "
                  f"{'' if over is None else f'{over:+.1%}'} | {r['specs_per_cpu_s'][m]} | "
                  f"{'' if cover is None else f'{cover:+.1%}'} | "
                  f"{r['startup_s'].get(m, '')} |")
        print(f"2 workers / 1 worker: {r['speedup_2_workers']}x (two bare processes / one: "
              f"{r['speedup_2_bare_processes']}x)")
    print("\nthe engine's own CPU per spec (a job that computes nothing):")
    for ways, row in result["engine_cost"].items():
        print(f"  {ways} (one spec's work: {row['work_us_per_spec']} us): " + ", ".join(
            f"{m} {row[m]['engine_us_per_spec']} us = {row[m]['share_of_work']:.1%}"
            for m in ("sandbox", "dask 1", "dask 2")))
    print("\ntiny run (20 specs, start to end, s):")
    for ways, row in result["tiny_run_s"].items():
        print(f"  {ways}: " + ", ".join(f"{m} {t}" for m, t in row.items()))


if __name__ == "__main__":
    main()
