"""`tconv check` against targets that misbehave around the arithmetic: write to their arguments,
exit, raise anything, hang, kill their process, return strings, fork, leave threads behind.
Each verdict is a failure with a message naming what happened, never a pass, a traceback or a
hang; the command stays one line on stderr and JSON with --json."""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bad_targets
import wrong_impls
from tconv import engine
from tconv.check import CheckJob, check, check_one, check_spec, corner_specs
from tconv.strategies import conv_specs

HERE = Path(__file__).parent
TCONV = [sys.executable, "-m", "tconv.cli", "check"]


def run_check(fn, **kw):
    return check(fn, "bad_targets:x", "torch-conv-transpose", count=kw.pop("count", 10), **kw)


def _cli(*args, timeout=90):
    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "250"}
    return subprocess.run(TCONV + list(args), capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_a_target_that_zeroes_its_input_fails():
    """The expectation comes from the data before the call: zeroing the input and returning
    the transposed convolution of the zeros is wrong, and the written argument is named."""
    report = run_check(bad_targets.zeroes_input)
    assert not report.passed
    message = report.first_failure.message
    assert report.first_failure.kind == "modified"
    assert message.startswith("modified its argument input (") and "cells differ" in message


def test_a_right_result_with_a_scaled_weight_names_the_argument():
    report = run_check(bad_targets.scales_input_after)
    assert not report.passed and report.minimal.kind == "modified"
    assert report.minimal.message.startswith("modified its argument weight (")
    assert report.minimal.message.endswith("its result is right")


@pytest.mark.parametrize("fn, what", [
    (bad_targets.strings, "returned a ndarray of dtype <U3"),
    (bad_targets.nones, "returned a ndarray of dtype object"),
    (bad_targets.nothing, "returned None"),
])
def test_a_result_that_is_not_numbers_is_a_clear_failure(fn, what):
    report = run_check(fn)
    assert not report.passed and report.minimal.kind == "result"
    assert report.minimal.message.startswith(what)
    assert "expected an array of numbers of shape (1, 1, 1)" in report.minimal.message


def test_sys_exit_in_the_target_is_a_failure():
    proc = _cli("bad_targets:exits", "--count", "5")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("FAIL") and "raised SystemExit: 0" in proc.stdout


def test_sys_exit_at_import_is_one_line_and_exit_2(tmp_path):
    module = tmp_path / "exits_at_import.py"
    module.write_text("import sys\n\nsys.exit(0)\n\n\ndef conv_transpose(y, w, *args):\n"
                      "    return y\n")
    target = f"{module}:conv_transpose"
    proc = _cli(target)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (f"tconv: error: TARGET {target!r} could not be imported: "
                           f"SystemExit: 0\n")


def test_any_base_exception_is_a_failure_with_its_message():
    proc = _cli("bad_targets:raises_keyboard_interrupt", "--count", "3", "--json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["minimal_failure"]["message"] == "raised KeyboardInterrupt"


def test_a_hanging_target_is_timed_out_and_the_check_ends():
    proc = _cli("bad_targets:hangs", "--count", "3", "--timeout", "1", "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["first_failure"]["kind"] == "timeout"
    assert report["first_failure"]["message"].startswith("hangs: no result within 1 s")


@pytest.mark.parametrize("target, death", [
    ("aborts", "killed by SIGABRT"), ("exits_process", "exited with code 0")])
def test_a_target_that_kills_its_process_is_a_crash(target, death):
    proc = _cli(f"bad_targets:{target}", "--input", "1,2,5", "--out-channels", "2", "--json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["kind"] == "crash"
    assert result["message"] == f"crashed the process twice: {death}"


def test_a_crash_on_some_specs_shrinks_to_the_smallest_that_crashes():
    """A kernel that aborts on grouped specs only: the minimal spec has two groups of one
    channel, in 1-d, and the repro command names it."""
    report = run_check(bad_targets.aborts_with_groups, count=8, timeout=30)
    assert not report.passed and report.minimal.kind == "crash"
    spec = report.minimal.spec
    assert (spec.ndim, spec.groups, spec.in_channels, spec.out_channels, spec.kernel_size,
            spec.stride) == (1, 2, 2, 2, (1,), (1,))
    assert "--groups 2" in report.command


def test_a_target_that_forks_is_judged_once():
    proc = _cli("bad_targets:forks", "--count", "6")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASS") == 1 and "FAIL" not in proc.stdout


def test_a_thread_left_running_does_not_hold_the_check():
    proc = _cli("bad_targets:leaves_a_thread", "--count", "4", timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("PASS: 4 specs")


@pytest.mark.parametrize("args, parameter", [
    (["wrong_impls:correct", "--count", "0"], "--count"),
    (["wrong_impls:correct", "--timeout", "-1"], "--timeout"),
    (["no_such_module_xyz:f"], "TARGET"),
])
def test_json_errors_stay_json(args, parameter):
    proc = _cli(*args, "--json")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    error = json.loads(proc.stdout)
    assert error["parameter"] == parameter
    assert proc.stderr == f"tconv: error: {error['error']}\n"


# -- fuzz: a target drawn from every way of misbehaving ----------------------------------------

class _Boom(BaseException):
    pass


MISDEEDS = ("none", "write input", "write weight", "raise ValueError", "raise SystemExit",
            "raise BaseException", "strings", "object", "None", "ragged", "wrong shape",
            "off by a little", "nan")


def _target(misdeed: str):
    def fn(y, w, *args):
        x = wrong_impls.correct(y, w, *args)
        if misdeed == "write input":
            y.flat[0] += 1
        elif misdeed == "write weight":
            w[...] = 0
        elif misdeed.startswith("raise"):
            raise {"raise ValueError": ValueError("bad"), "raise SystemExit": SystemExit(3),
                   "raise BaseException": _Boom()}[misdeed]
        elif misdeed == "strings":
            return x.astype(str)
        elif misdeed == "object":
            return x.astype(object)
        elif misdeed == "None":
            return None
        elif misdeed == "ragged":
            return [[1.0], [1.0, 2.0]]
        elif misdeed == "wrong shape":
            return x[..., :-1]
        elif misdeed == "off by a little":
            x.flat[-1] += 1e-6 * (1 + abs(x.flat[-1]))
        elif misdeed == "nan":
            x.flat[0] = np.nan
        return x
    return fn


@settings(max_examples=int(os.environ.get("TCONV_FUZZ", 60)), deadline=None)
@given(spec=conv_specs(dims=(1, 2), max_channels_per_group=2, max_out=3, symmetric=True),
       misdeed=st.sampled_from(MISDEEDS), seed=st.integers(0, 2**16))
def test_fuzz_only_a_well_behaved_right_target_passes(spec, misdeed, seed):
    """Every misdeed fails, with a message; the well-behaved target passes; no exception but
    the target's Ctrl-C escapes check_spec."""
    outcome = check_spec(_target(misdeed), "torch-conv-transpose", spec, seed=seed)
    assert outcome.passed == (misdeed == "none"), (misdeed, outcome.message)
    assert outcome.passed or outcome.message


def test_threads_judge_their_own_targets():
    """check_spec in four threads at once, two right and two wrong targets: each verdict is
    the one it has alone."""
    specs = corner_specs((2,))
    jobs = [(_target(m), m) for m in ("none", "write input", "none", "off by a little")]
    verdicts: dict = {}

    def work(k, fn):
        verdicts[k] = [check_spec(fn, "torch-conv-transpose", s, seed=k).passed for s in specs]

    threads = [threading.Thread(target=work, args=(k, fn)) for k, (fn, _) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verdicts == {k: [m == "none"] * len(specs) for k, (_, m) in enumerate(jobs)}


# JAX, loaded by earlier tests of the session, warns at every fork; this child runs no JAX
@pytest.mark.filterwarnings("ignore:os.fork.. was called:RuntimeWarning")
def test_a_forked_child_gets_sandboxes_of_its_own():
    """After a fork, the child's checks start their own sandbox process (the parent's pipes are
    not shared), and the parent's sandbox still answers afterwards."""
    spec = corner_specs((1,))[0]
    with engine.Engine(timeout=30) as e:
        job = CheckJob("wrong_impls:correct", "torch-conv-transpose", "float64", "numpy")
        assert e.call(job, (spec, 0)).value[0] is True
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                o = check_one(None, "bad_targets:aborts", "torch-conv-transpose", spec,
                              timeout=30)
                os.write(w, o.kind.encode())
            finally:
                os._exit(0)
        os.close(w)
        _, status = os.waitpid(pid, 0)
        assert os.read(r, 100) == b"crash" and status == 0
        assert e.call(job, (spec, 1)).value[0] is True


def test_keep_going_counts_every_failure_and_a_resumed_check_agrees(tmp_path):
    """A kernel that ignores dilation fails exactly on the specs with a dilated tap; with
    keep_going every spec is checked and counted. Interrupted after 6 specs and resumed from
    its checkpoint, the report is the uninterrupted one."""
    from tconv.check import expressible
    from tconv.sweep import draw_specs

    api, out = "torch-conv-transpose", tmp_path / "check.jsonl"
    args = (wrong_impls.no_dilation, "wrong_impls:no_dilation", api)
    specs = [s for s in corner_specs() + draw_specs(20, 0, symmetric=True)
             if expressible(s, api)][:20]
    dilated = sum(any(d > 1 and k > 1 for d, k in zip(s.dilation, s.kernel_size)) for s in specs)

    def interrupt(n, total):
        if n >= 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        check(*args, count=20, keep_going=True, out=str(out), progress=interrupt)
    resumed = check(*args, count=20, keep_going=True, out=str(out), resume=True)
    whole = check(*args, count=20, keep_going=True)
    assert whole.checked == 20 and 0 < dilated < 20
    assert sum(whole.failures.values()) == dilated
    assert resumed.resumed == 6
    strip = lambda r: {k: v for k, v in r.to_dict().items() if k != "resumed"}  # noqa: E731
    assert strip(resumed) == strip(whole)
