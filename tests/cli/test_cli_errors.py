"""Every user mistake on the command line: one line on stderr naming what was typed, exit 2, no
traceback; with --json also a JSON error on stdout. And the conventions of a mature CLI:
--version, -h, a reader that goes away, no directories made unasked."""
import json
import os
import subprocess
import sys

import pytest

import tconv

TCONV = [sys.executable, "-m", "tconv.cli"]


def run(*args, **kwargs):
    return subprocess.run(TCONV + list(args), capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, **kwargs)


def one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    assert proc.stderr.startswith("tconv: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.parametrize("args, needles", [
    # the parser's own errors, which typer prints as a box of several lines
    (["verify", "--groups", "abc"], ["--groups", "abc"]),
    (["verify", "--groups", "1.5"], ["--groups", "1.5"]),
    (["verify", "--json", "true"], ["true"]),
    (["verify", "--strde", "2"], ["--strde"]),
    (["frobnicate"], ["frobnicate"]),
    # mistakes that used to be answered in terms of the weight shape
    (["verify", "--groups", "2"], ["--groups 2", "input channels 1"]),
    (["verify", "--out-channels", "-3"], ["--out-channels", "-3"]),
    (["verify", "--kernel", "0"], ["--kernel", "'0'"]),
    (["overlap", "--kernel", "0"], ["--kernel", "'0'"]),
    (["shape", "--input", "1,0,4"], ["--input", "'1,0,4'"]),
    (["verify", "--padding", "1:2:3"], ["--padding", "'1:2:3'"]),
    # outputs that cannot be written are refused before anything is computed
    (["matrix", "--input", "1,1,4,4,4", "--png", "m.png"], ["2-d", "3"]),
])
def test_mistakes_are_one_line_naming_what_was_typed(args, needles, tmp_path):
    one_line_error(run(*args, cwd=tmp_path), *needles)
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("args, parameter", [
    (["verify", "--json", "--stride", "0"], "stride"),
    (["verify", "--json", "--groups", "abc"], "--groups"),
    (["shape", "--json", "--kernel", "0"], "--kernel"),
    (["explain", "--json", "--input", "1,1,4,4,4", "--gif", "x.gif"], None),
    (["check", "nowhere:fn", "--json"], None),
    (["convert", "--json", "--from", "torch", "--to", "tf", "--layer-input", "8", "--kernel",
      "3", "--groups", "2", "--layer-in-channels", "2", "--layer-out-channels", "2"], None),
    (["convert", "--json", "--from", "torch", "--to", "tf", "--input", "8", "--kernel", "3"],
     "--input"),
])
def test_json_stays_json_on_failure(args, parameter, tmp_path):
    proc = run(*args, cwd=tmp_path)
    one_line_error(proc)
    error = json.loads(proc.stdout)
    assert error["error"] == proc.stderr.removeprefix("tconv: error: ").strip()
    if parameter is not None:
        assert error["parameter"] == parameter


def test_version_and_short_help():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"tconv {tconv.__version__}"
    for args in (["-h"], ["verify", "-h"]):
        proc = run(*args)
        assert proc.returncode == 0 and "Usage: tconv" in proc.stdout and not proc.stderr


def test_a_reader_that_goes_away_ends_the_run_quietly():
    """`tconv verify | head -1`: no traceback, no message, exit 0 (rich's own answer is 1)."""
    proc = subprocess.Popen(TCONV + ["verify", "--backends", "none"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""


def test_explain_checks_its_outputs_before_printing(tmp_path):
    """--png names a directory: an existing file there is refused before the explanation is
    computed or printed, and a directory whose parent is missing is not made."""
    existing = tmp_path / "taken"
    existing.write_text("mine")
    proc = run("explain", "--png", str(existing))
    one_line_error(proc, str(existing), "not a directory")
    assert proc.stdout == "" and existing.read_text() == "mine"
    deep = tmp_path / "a" / "b"
    one_line_error(run("explain", "--png", str(deep)), "parent directory")
    assert not (tmp_path / "a").exists()


def test_big_endian_dtype_runs_in_every_framework():
    pytest.importorskip("torch")
    proc = run("verify", "--dtype", ">f8", "--backends", "torch", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["dtype"] == "float64" and report["passed"]
    assert {r["status"] for r in report["rows"] if r["source"] == "torch"} == {"PASS"}


def test_verify_refuses_an_exact_computation_too_large_before_allocating():
    proc = run("verify", "--input", "1,1,100000,100000", "--backends", "none", timeout=60)
    one_line_error(proc, "exact arithmetic", "limits")


def test_a_tensor_that_requires_grad_is_taken_as_its_values():
    torch = pytest.importorskip("torch")
    y = torch.arange(6.0).reshape(1, 2, 3).requires_grad_(True)
    w = torch.ones(2, 1, 2, requires_grad=True)
    got = tconv.conv_transpose(y, w, stride=2)
    want = torch.nn.functional.conv_transpose1d(y, w, stride=2).detach().numpy()
    assert (got == want).all()
