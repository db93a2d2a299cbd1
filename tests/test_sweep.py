"""`tconv sweep`: the tally, the shrinking of a disagreement, and the command end to end."""
import json
import os
import subprocess
import sys


from tconv import methods
from tconv.spec import ConvSpec
from tconv.sweep import draw_specs, shrink, sweep, way_key


def test_draw_is_reproducible_and_varied():
    a, b = draw_specs(60, seed=3), draw_specs(60, seed=3)
    assert a == b and len(a) == 60
    assert {s.ndim for s in a} == {1, 2, 3}
    assert any(s.groups > 1 for s in a) and any(max(s.dilation) > 1 for s in a)
    assert any(s.symmetric_padding is None for s in a)
    assert any(op >= s for spec in a for op, s in zip(spec.output_padding, spec.stride))


def test_way_key_drops_the_dimension():
    assert way_key("F.conv_transpose3d") == "F.conv_transposeNd"
    assert way_key("torch.nn.grad.conv1d_input") == "torch.nn.grad.convNd_input"
    assert way_key("tconv polyphase") == "tconv polyphase"


def test_shrink_reaches_the_minimum_of_a_known_condition():
    """A made-up failure condition (stride >= 2 with groups >= 2 and 2 output channels per
    group) shrinks to exactly the smallest spec that has it."""
    big = ConvSpec.transpose((2, 6, 4, 3, 2), (6, 2, 3, 2, 2), stride=(3, 2, 1), padding=1,
                             dilation=(2, 1, 1), groups=3, output_padding=(1, 0, 0))
    fails = lambda s: max(s.stride) >= 2 and s.groups >= 2 and s.in_channels // s.groups >= 2  # noqa: E731
    small = shrink(big, fails)
    assert fails(small)
    assert (small.ndim, small.batch, small.groups, small.kernel_size, small.stride,
            small.dilation, small.padding, small.output_size, small.output_padding,
            small.out_channels // small.groups) == (1, 1, 2, (1,), (2,), (1,), ((0, 0),), (1,),
                                                    (0,), 1)


def test_a_broken_method_is_counted_and_shrunk(monkeypatch):
    """A method that drops the last input cell of every dim disagrees; the sweep counts it and
    shrinks it to a one-cell-output spec whose repro command names it."""
    right = methods.polyphase.conv_transpose

    def broken(y, w, spec):
        x = right(y, w, spec).copy()
        x[(Ellipsis,) + (slice(-1, None),) * spec.ndim] = 0
        return x

    monkeypatch.setattr(methods.polyphase, "conv_transpose", broken)
    report = sweep(40, seed=1, dtype="int64")
    assert not report.passed
    assert report.tallies["tconv polyphase"]["FAIL"] > 0
    assert report.tallies["tconv gemm"]["FAIL"] == 0
    (d,) = report.disagreements
    assert d.key == "tconv polyphase"
    assert d.minimal.ndim == 1 and d.minimal.input_shape == (1, 1, 1)
    assert d.command.startswith("tconv verify --input 1,1,1 ")


def test_cli_end_to_end(tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "sweep", "--count", "40",
                           "--backends", "torch", "--workers", "2", "--json", str(out)],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all agree" in proc.stdout
    report = json.loads(out.read_text())
    assert report["count"] == 40 and report["passed"]
    autograd = report["ways"]["torch autograd"]
    assert autograd["PASS"] == 40
    nn_grad = report["ways"]["torch.nn.grad.convNd_input"]
    assert nn_grad["PASS"] + nn_grad["N/A"] == 40 and nn_grad["N/A"] > 0
    assert all(note.startswith("not expressible") for note in nn_grad["notes"])


def test_cli_bad_flags():
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "sweep", "--dims", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--dims must be >= 1" in proc.stderr


def test_repro_command_meets_the_sweeps_data(monkeypatch):
    """A method that goes wrong only on rare data (a first gradient cell equal to 3, about one
    draw in eleven) is found by the sweep on its random gradients; the repro command (--gradient
    random --seed S) runs the minimal spec on the same numbers and fails too; the same command
    with another seed passes (so the test needs the sweep's own seed, not any seed)."""
    from typer.testing import CliRunner

    from tconv.cli.app import app

    right = methods.gemm.conv_transpose

    def data_dependent(y, w, spec):
        x = right(y, w, spec)
        return x + 1 if y.size and y.flat[0] == 3 else x

    monkeypatch.setattr(methods.gemm, "conv_transpose", data_dependent)
    report = sweep(60, seed=3, dtype="int64")
    (d,) = report.disagreements
    assert d.key == "tconv gemm" and "--gradient random --seed " in d.command
    args = d.command.split()[1:]
    result = CliRunner().invoke(app, args + ["--json"])
    assert result.exit_code == 1, result.output
    rows = {r["name"]: r for r in json.loads(result.output)["rows"]}
    assert rows["tconv gemm"]["status"] == "FAIL"
    assert all(r["status"] == "PASS" for name, r in rows.items() if name != "tconv gemm")
    seed = args.index("--seed") + 1
    others = [int(args[seed]) + k for k in range(1, 4)]
    passes = [CliRunner().invoke(app, args[:seed] + [str(s)] + args[seed + 1:]).exit_code == 0
              for s in others]
    assert any(passes)
