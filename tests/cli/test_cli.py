"""The `tconv` command, end to end."""
import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import tconv
from tconv import methods
from tconv.cli.app import app

TCONV = [sys.executable, "-m", "tconv.cli"]


def run(*args):
    return subprocess.run(TCONV + list(args), capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_verify_default_reproduces_the_experiment():
    proc = run("verify")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "input (1, 1, 4, 4), weight (1, 1, 3, 3), stride (2, 2), padding (1, 1)" in out
    assert "output_padding (1, 1) -> output (1, 1, 2, 2)" in out
    for method in tconv.METHODS:
        assert f"tconv {method}" in out
    if pytest.importorskip("torch"):
        for way in ("torch autograd", "torch.nn.grad.conv2d_input", "F.conv_transpose2d"):
            assert way in out
    assert "FAIL" not in out
    assert proc.stderr == ""            # no framework's start-up logs, no telemetry warnings


@pytest.mark.parametrize("backend", ["tensorflow", "litert", "tf2onnx"])
def test_each_tensorflow_row_alone_starts_quietly(backend):
    """Whichever row imports TensorFlow first silences its start-up lines (tf2onnx imported it
    bare and printed absl's and oneDNN's lines)."""
    pytest.importorskip(backend if backend != "litert" else "ai_edge_litert")
    proc = run("verify", "--backends", backend)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_verify_json_rows_hold_real_numbers():
    proc = run("verify", "--json", "--input", "2,4,7", "--out-channels", "6", "--groups", "2",
               "--kernel", "3", "--stride", "3", "--padding", "0:2", "--dilation", "2",
               "--dtype", "float64", "--backends", "none")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["passed"] is True
    assert report["spec"]["output_shape"] == [2, 6, 2]   # floor((7 + 2 - 5) / 3) + 1
    assert [r["name"] for r in report["rows"]] == [f"tconv {m}" for m in tconv.METHODS]
    for row in report["rows"]:
        assert row["status"] == "PASS" and 0 <= row["max_abs_diff"] <= row["bound"] < 1e-12


def test_verify_show_prints_the_arrays():
    proc = run("verify", "--show", "--dtype", "int64", "--seed", "5")
    assert proc.returncode == 0
    for title in ("x (input)", "w (kernel)", "o = conv(x, w)", "stride-1 zeros inserted",
                  "flipped", "exact dL/dx"):
        assert title in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--stride", "0"], "stride must be >= 1 in every dim, got (0, 0)"),
    (["--groups", "3", "--input", "1,4,8,8"], "groups=3 must divide the input channels 4"),
    (["--kernel", "9"], "kernel size 9"),
    (["--padding", "x"], "--padding takes integers"),
    (["--dtype", "complex64"], "--dtype must be a real integer or float dtype"),
    (["--dtype", "nonsense"], "--dtype 'nonsense' is not a NumPy dtype"),
    (["--kernel", "3,3,3"], "--kernel has 3 sizes but --input has 2 spatial dims"),
    (["--input", "4,4"], "--input must be N,C,*spatial"),
    (["--backends", "caffe"], "framework 'caffe' is not one of"),
])
def test_bad_input_one_line_exit_2(args, message):
    proc = run("verify", *args)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_flag_exits_2():
    proc = run("verify", "--strde", "2")
    assert proc.returncode == 2 and "--strde" in proc.stderr


def test_a_wrong_method_makes_verify_fail(monkeypatch):
    """If one method is wrong (here: the kernel not flipped), its row fails and the exit is 1."""
    from tconv._arrays import flip_spatial
    right = methods.zero_insertion.conv_transpose
    monkeypatch.setattr(methods.zero_insertion, "conv_transpose",
                        lambda y, w, spec: right(y, flip_spatial(w), spec))
    result = CliRunner().invoke(app, ["verify", "--json", "--backends", "none"])
    assert result.exit_code == 1
    rows = {r["name"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["tconv zero_insertion"]["status"] == "FAIL"
    assert rows["tconv zero_insertion"]["max_abs_diff"] > rows["tconv zero_insertion"]["bound"]
    assert rows["tconv scatter"]["status"] == "PASS"


def test_not_expressible_rows_for_more_than_three_dims():
    pytest.importorskip("torch")
    proc = run("verify", "--json", "--input", "1,1,3,3,3,3", "--kernel", "2", "--stride", "1",
               "--padding", "0")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0
    torch_rows = [r for r in report["rows"] if r["source"] == "torch"]
    assert len(torch_rows) == 3
    assert all(r["status"] == "N/A" and "1-d, 2-d and 3-d" in r["note"] for r in torch_rows)


@pytest.mark.parametrize("args, message", [
    (["verify", "--seed", "-1"], "--seed must be >= 0, got -1"),
    (["verify", "--gradient", "ones"], "--gradient must be 'forward' or 'random', got 'ones'"),
    (["sweep", "--seed", "-2"], "--seed must be >= 0, got -2"),
    (["sweep", "--count", "2", "--json", "/nonexistent/dir/x.json"], "cannot be written"),
    (["check", "wrong_impls:correct", "--count", "0"], "--count must be >= 1, got 0"),
    (["bench", "--quick", "--methods", ","], "--methods names no method"),
])
def test_more_bad_flags_exit_2_before_any_work(args, message):
    proc = subprocess.run(TCONV + args, capture_output=True, text=True)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1


def test_verify_empty_batch_runs():
    """N = 0 is valid: every way computes an empty gradient or says why it cannot."""
    proc = run("verify", "--input", "0,1,4", "--kernel", "3", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["passed"] is True
