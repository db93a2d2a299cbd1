"""`tconv check` finds each deliberately wrong implementation and shrinks it to a minimal spec."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import wrong_impls
from tconv.check import check

HERE = Path(__file__).parent
TCONV = [sys.executable, "-m", "tconv.cli"]


def run_check(fn, **kw):
    return check(fn, "wrong_impls:x", "torch-conv-transpose", count=kw.pop("count", 80), **kw)


def test_a_correct_implementation_passes_every_corner():
    report = run_check(wrong_impls.correct, count=60)
    assert report.passed and report.checked == 60


@pytest.mark.parametrize("fn, minimal", [
    (wrong_impls.no_output_padding,
     lambda s: max(s.output_padding) == 1 and s.ndim == 1 and s.kernel_size == (1,)),
    (wrong_impls.flipped_kernel,
     lambda s: s.kernel_size == (2,) and s.stride == (1,) and s.groups == 1),
    (wrong_impls.dilated_size_k_plus_d,
     lambda s: s.kernel_size == (1,) and s.dilation == (2,)),
    (wrong_impls.interleaved_groups,
     lambda s: s.groups == 2 and s.out_channels == 4 and s.kernel_size == (1,)),
    (wrong_impls.no_dilation,
     lambda s: s.dilation == (2,) and s.kernel_size == (2,)),
])
def test_each_bug_is_found_and_shrunk(fn, minimal):
    report = run_check(fn)
    assert not report.passed
    spec = report.minimal.spec
    assert minimal(spec), spec.describe()
    assert spec.batch == 1 and spec.ndim == 1
    assert report.first_failure.spec.ndim >= spec.ndim


def test_the_message_says_shape_first_then_cells():
    report = run_check(wrong_impls.no_output_padding)
    assert report.minimal.message.startswith("shape (1, 1, ")
    report = run_check(wrong_impls.flipped_kernel)
    assert "cells differ" in report.minimal.message and "expected" in report.minimal.message


def test_an_exception_in_the_target_is_a_failure_not_a_crash():
    report = run_check(wrong_impls.raises)
    assert not report.passed
    assert report.minimal.message == "raised RuntimeError: not implemented for this layout"


def test_input_grad_api():
    report = check(wrong_impls.input_grad_via_conv_transpose, "t:x", "torch-input-grad",
                   count=40)
    assert report.passed


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(HERE), "COLUMNS": "250"}
    return subprocess.run(TCONV + ["check", *args], capture_output=True, text=True, env=env)


def test_cli_finds_the_bug_and_the_repro_command_reproduces_it():
    proc = _cli(f"{HERE / 'wrong_impls.py'}:dilated_size_k_plus_d", "--count", "50")
    assert proc.returncode == 1
    assert "minimal failing spec" in proc.stdout and "shape" in proc.stdout
    repro = proc.stdout.split("repro: ", 1)[1].strip().split()
    assert repro[:2] == ["tconv", "check"]
    again = _cli(*repro[2:])
    assert again.returncode == 1 and again.stdout.startswith("FAIL")


def test_cli_passes_torch_itself_with_tensors():
    pytest.importorskip("torch")
    proc = _cli("torch.nn.functional:conv_transpose2d", "--dims", "2", "--arrays", "torch",
                "--count", "40", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["passed"] is True


@pytest.mark.parametrize("args, message", [
    (["nope"], "TARGET must be module:function"),
    (["no_such_module_xyz:f"], "could not be imported: ModuleNotFoundError"),
    (["wrong_impls:missing"], "has no function 'missing'"),
    (["/tmp/does/not/exist.py:f"], "does not exist"),
    (["wrong_impls:correct", "--api", "tf"], "--api must be one of"),
    (["wrong_impls:correct", "--input", "1,1,4", "--padding", "0:1"], "cannot express"),
])
def test_cli_bad_input(args, message):
    proc = _cli(*args)
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1
