"""tconv.engine against real processes: a LocalCluster of two workers, a scheduler and two
workers started here with `dask scheduler` / `dask worker`, a worker killed mid-sweep, an
interrupted and resumed sweep, a hanging and a crashing kernel. Small runs (tens of specs)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")   # installed by make (the `distributed` extra)

import psutil  # noqa: E402  (a dependency of distributed)

import bad_targets  # noqa: E402
from engine_jobs import Misbehaves, WhereAndSquare  # noqa: E402
from tconv import engine  # noqa: E402
from tconv.check import check, check_one, corner_specs  # noqa: E402
from tconv.sweep import sweep  # noqa: E402

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def strip(report: dict) -> dict:
    """A report without the time taken and how many specs were read back."""
    return {k: v for k, v in report.items() if k not in ("seconds", "resumed")}


def same_summary(a, b) -> bool:
    """Two sweep reports agree on everything but the time taken and how many were resumed."""
    return strip(a.to_dict()) == strip(b.to_dict())


def records(path) -> list[dict]:
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert lines[0]["record"] == "header"
    return lines[1:]


def per_spec(path) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in records(path):
        counts[r["spec"]] = counts.get(r["spec"], 0) + 1
    return counts


@pytest.fixture(scope="module")
def inline_reference():
    """The sweep run the plain way: in this process, one spec after another."""
    return sweep(30, seed=5, dtype="int64")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster_by_hand():
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, stopped afterwards."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], **quiet)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny",
                 "--host", "127.0.0.1", "--no-dashboard"], **quiet))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:   # the workers first, then the scheduler; a slow goodbye is cut short
        for group in (procs[1:], procs[:1]):
            for p in group:
                p.terminate()
            for p in group:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def test_local_cluster_of_two_workers_gives_the_one_process_summary(inline_reference, tmp_path):
    out = tmp_path / "run.jsonl"
    report = sweep(30, seed=5, dtype="int64", workers=2, batch_size=3, out=str(out))
    assert same_summary(report, inline_reference)
    ways = len(inline_reference.tallies)
    assert per_spec(out) == {i: ways for i in range(30)}


def test_each_worker_sets_up_once_and_keeps_its_sandbox(cluster_by_hand):
    """Twenty batches over two workers: two sandbox processes, each set up once."""
    with engine.Engine(scheduler=cluster_by_hand, batch_size=2) as e:
        outcomes = list(e.map(WhereAndSquare(), [(i, i) for i in range(40)], total=40))
    assert sorted(o.key for o in outcomes) == list(range(40))
    assert all(o.value[2] == o.key ** 2 for o in outcomes)
    assert len({o.value[0] for o in outcomes}) == 2
    assert {o.value[1] for o in outcomes} == {1}


def test_a_crashing_and_a_hanging_item_on_the_cluster(cluster_by_hand):
    """Item 3 aborts its process (twice: CRASH), item 5 hangs (TIMEOUT); every other item gets
    its result, each once."""
    with engine.Engine(scheduler=cluster_by_hand, timeout=2, batch_size=4) as e:
        outcomes = list(e.map(Misbehaves(aborts={3}, hangs={5}), [(i, i) for i in range(12)],
                              total=12))
    by_key = {o.key: o for o in outcomes}
    assert len(outcomes) == len(by_key) == 12
    assert by_key[3].status == "CRASH"
    assert by_key[3].message == "crashed the process twice: killed by SIGABRT"
    assert by_key[5].status == "TIMEOUT"
    assert all(by_key[i].value == i * i for i in by_key if i not in (3, 5))


def test_check_on_the_cluster_times_out_a_hanging_kernel_and_records_a_crash(cluster_by_hand):
    hang = check(bad_targets.hangs, "bad_targets:hangs", "torch-conv-transpose", count=4,
                 scheduler=cluster_by_hand, timeout=1)
    assert hang.first_failure.kind == "timeout" and hang.minimal.spec == hang.first_failure.spec
    crash = check_one(bad_targets.aborts, "bad_targets:aborts", "torch-conv-transpose",
                      corner_specs((1,))[0], scheduler=cluster_by_hand, timeout=30)
    assert crash.kind == "crash" and not crash.passed
    assert crash.message == "crashed the process twice: killed by SIGABRT"


def _dask_workers() -> list[psutil.Process]:
    """This process's Dask worker processes (children started by the LocalCluster's nannies)."""
    return [p for p in psutil.Process().children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())]


def test_a_worker_killed_mid_sweep_loses_no_spec(inline_reference, tmp_path):
    out = tmp_path / "run.jsonl"
    killed = []

    def kill_one(n):
        if n == 4 and not killed:
            victim = _dask_workers()[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed.append(victim.pid)

    report = sweep(30, seed=5, dtype="int64", workers=2, batch_size=2, out=str(out),
                   progress=kill_one)
    assert killed
    assert same_summary(report, inline_reference)
    assert per_spec(out) == {i: len(inline_reference.tallies) for i in range(30)}


def test_an_interrupted_sweep_resumed_equals_an_uninterrupted_one(inline_reference, tmp_path):
    """Ctrl-C (KeyboardInterrupt) after 10 specs on the cluster, then --resume in one process;
    a torn last line (a killed writer) is cut off first."""
    out = tmp_path / "run.jsonl"

    def interrupt(n):
        if n >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(30, seed=5, dtype="int64", workers=2, batch_size=2, out=str(out),
              progress=interrupt)
    kept = per_spec(out)
    assert 10 <= len(kept) < 30 and set(kept.values()) == {len(inline_reference.tallies)}
    with open(out, "a") as f:
        f.write('{"spec": 29, "seed": 34, "sour')
    report = sweep(30, seed=5, dtype="int64", out=str(out), resume=True)
    # the torn line's item cannot be told; the last whole item is dropped with it, to be safe
    assert report.resumed == len(kept) - 1
    assert same_summary(report, inline_reference)
    assert per_spec(out) == {i: len(inline_reference.tallies) for i in range(30)}


def test_a_scheduler_started_by_hand(cluster_by_hand, inline_reference, tmp_path):
    """The command line, pointed at the scheduler by $TCONV_SCHEDULER, reports what one
    process does; the Python API with scheduler= too."""
    report_file = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "tconv.cli", "sweep", "--count", "30", "--seed", "5", "--dtype",
         "int64", "--backends", "none", "--json", str(report_file)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "TCONV_SCHEDULER": cluster_by_hand, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert strip(json.loads(report_file.read_text())) == strip(inline_reference.to_dict())
    report = sweep(30, seed=5, dtype="int64", scheduler=cluster_by_hand)
    assert same_summary(report, inline_reference)


def test_cli_ctrl_c_leaves_a_resumable_file(tmp_path):
    """SIGINT to `tconv sweep --workers 2 --out FILE` once specs are recorded: exit 130, the
    resume command printed; resumed, the summary is the one of a single uninterrupted run.
    (The workers take about 3 s to start and then run these specs in well under a second
    each hundred: with 80 specs the first results and the end of the run came 0.3 s apart.)"""
    out = tmp_path / "run.jsonl"
    count = 1000
    args = ["--count", str(count), "--seed", "1", "--backends", "torch", "--dtype", "float64"]
    env = {**os.environ, "COLUMNS": "400"}
    # a shell's background job ignores SIGINT, and so would the sweep started from it: the
    # command gets the default back before it starts (SIG_DFL survives exec, and Python then
    # installs its KeyboardInterrupt), so that it meets Ctrl-C as from a terminal
    command = [sys.executable, "-m", "tconv.cli", "sweep", *args, "--workers", "2", "--out",
               str(out)]
    reset = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "os.execv(sys.argv[1], sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", reset, *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (not out.exists() or
                                           len(out.read_text().splitlines()) < 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "continue with: tconv sweep" in stderr and f"--resume {out}" in stderr
    kept = per_spec(out)
    assert 0 < len(kept) < count
    report_file = tmp_path / "resumed.json"
    again = subprocess.run([sys.executable, "-m", "tconv.cli", "sweep", *args, "--resume",
                            str(out), "--json", str(report_file)],
                           capture_output=True, text=True, env=env, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    resumed = json.loads(report_file.read_text())
    assert resumed["resumed"] == len(kept)
    whole = sweep(count, seed=1, backends=["torch"], dtype="float64").to_dict()
    assert strip(resumed) == strip(whole)
    assert len(per_spec(out)) == count


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be >= 1"),
    (["--scheduler", "localhost:8786"], "--scheduler must look like tcp://HOST:PORT"),
    (["--timeout", "-2"], "--timeout must be >= 0"),
    (["--out", "a.jsonl", "--resume", "b.jsonl"], "give one"),
])
def test_cli_engine_flags_are_checked_first(args, message, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "sweep", *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1


def test_checkpoints_are_not_overwritten_or_mixed(tmp_path):
    out = tmp_path / "run.jsonl"
    sweep(5, out=str(out))
    with pytest.raises(engine.ConvSpecError, match="exists: continue it with --resume"):
        sweep(5, out=str(out))
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "sweep", "--count", "6",
                           "--backends", "none", "--resume", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "was written with other parameters: count 5 (now 6)" in proc.stderr


def test_a_recorded_crash_is_reported_with_its_smallest_spec(tmp_path):
    """A checkpoint in which spec 3 crashed the process (as a framework that aborts would
    leave it): the resumed sweep counts it apart from the ways, keeps the rest, prints the
    spec and a repro command, and exits 1."""
    out = tmp_path / "run.jsonl"
    sweep(12, seed=2, dtype="int64", out=str(out))
    lines = out.read_text().splitlines()
    kept = [line for line in lines[1:] if json.loads(line)["spec"] != 3]
    first = next(json.loads(line) for line in lines[1:] if json.loads(line)["spec"] == 3)
    crash = first | {"source": None, "way": None, "status": "CRASH", "max_abs_diff": None,
                     "bound": None, "note": "crashed the process twice: killed by SIGABRT"}
    out.write_text("\n".join([lines[0], *kept, json.dumps(crash)]) + "\n")
    report_file = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "sweep", "--count", "12",
                           "--seed", "2", "--dtype", "int64", "--backends", "none", "--resume",
                           str(out), "--json", str(report_file)], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 spec(s) crashed the process (CRASH)" in proc.stdout
    assert "--backends none" in proc.stdout.split("repro: ")[1]
    report = json.loads(report_file.read_text())
    assert report["resumed"] == 12 and report["passed"] is False
    (problem,) = report["problems"]
    assert problem["status"] == "CRASH" and problem["count"] == 1
    assert problem["note"] == "crashed the process twice: killed by SIGABRT"
    assert all(sum(tally[s] for s in ("PASS", "FAIL", "KNOWN", "N/A")) == 11
               for tally in report["ways"].values())
