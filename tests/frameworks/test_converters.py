"""The converters as ways: a layer built in the source framework, converted by the real
converter, run by the target runtime, compared with exact arithmetic. Each documented or new
difference is pinned down on the smallest spec that shows it."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tconv import exact
from tconv.frameworks import (Broken, Crashed, KnownDifference, NotExpressible, Refused, available,
                              get)
from tconv.frameworks import onnx2tf as onnx2tf_module
from tconv.frameworks import nobuco as nobuco_module
from tconv.frameworks._server import RemoteError, Server, ServerCrashed

torch_onnx_backend, tf2onnx_backend, onnx2torch_backend, onnx2tf_backend, nobuco_backend = (
    get(name) for name in ("torch.onnx", "tf2onnx", "onnx2torch", "onnx2tf", "nobuco"))
from tconv.spec import ConvSpec
from tconv.strategies import arrays_for
from tconv.sweep import sweep
from tconv.verify import verify

def _needs(backend):
    """Skip unless the backend's packages are installed (found, not imported: importing
    onnx2torch or nobuco directly needs tconv's torchvision workaround first)."""
    if not available(backend):
        pytest.skip(f"{backend} is not installed")


ORIGIN = ConvSpec.forward((1, 2, 4, 4), (3, 2, 3, 3), stride=2, padding=1)  # op 1, symmetric


def _data(spec, seed=0):
    """Small integers as float32: every way that computes the layer is exact on them."""
    _, w, g = (a.astype(np.float32) for a in arrays_for(spec, seed))
    return w, g


def _rows(spec, backend, seed=0):
    w, g = _data(spec, seed)
    return {r.name: r for r in verify(spec, w, g, methods=(), backends=(backend,)).rows}


# -- torch.onnx.export -> onnxruntime ----------------------------------------------------------

def test_torch_onnx_both_exporters_pass_and_refuse_nothing_pytorch_says():
    _needs("torch.onnx")
    rows = _rows(ORIGIN, "torch.onnx")
    assert [r.status for r in rows.values()] == ["PASS", "PASS"]
    asym = ConvSpec.transpose((1, 1, 2), (1, 1, 2), padding=[(1, 0)])
    for row in _rows(asym, "torch.onnx").values():
        assert row.status == "N/A" and "symmetrically" in row.note


def test_torch_onnx_output_padding_past_the_stride_is_known_onnxruntime_14208():
    """PyTorch allows output_padding < max(stride, dilation); both exporters write it as is and
    onnxruntime refuses output_padding >= stride: KNOWN (onnxruntime#14208), not a crash."""
    _needs("torch.onnx")
    spec = ConvSpec.transpose((1, 1, 2), (1, 1, 1), dilation=2, output_padding=1)
    rows = _rows(spec, "torch.onnx")
    for row in rows.values():
        assert row.status == "KNOWN" and "#14208" in row.note
        assert "output_padding (1) may be too large for stride (1)" in row.note
    w, g = _data(spec)
    ways = torch_onnx_backend.input_grad_ways(spec, w, g)
    assert all(isinstance(v, KnownDifference) and isinstance(v.result, Broken)
               for v in ways.values())


# -- tf2onnx -> onnxruntime ---------------------------------------------------------------------

def test_tf2onnx_same_passes_and_explicit_padding_is_new_wrong():
    """'SAME' converts right. Explicit padding ((1, 0), (0, 0)) does not: with a constant
    output_shape tf2onnx ignores the padding attribute and derives the pads from the output size,
    total // 2 at the start, which is TF's 'SAME' split: the result equals exact arithmetic for
    padding ((0, 1), (0, 0)). New (reproduction: docs/reproductions/tf2onnx_explicit_padding.py)."""
    _needs("tf2onnx")
    same = ConvSpec.forward((1, 2, 6, 6), (2, 2, 3, 3), stride=2, padding="same")
    assert _rows(same, "tf2onnx")["tf2onnx(tf.nn.conv2d_transpose) -> onnxruntime"].status == \
        "PASS"
    spec = ConvSpec.transpose((1, 1, 2, 2), (1, 1, 2, 2), stride=2, padding=[(1, 0), (0, 0)])
    w, g = _data(spec, 3)
    (known,) = tf2onnx_backend.input_grad_ways(spec, w, g).values()
    assert isinstance(known, KnownDifference) and "new (docs/reproductions/" in known.reason
    got = known.result
    mirrored = ConvSpec.transpose((1, 1, 2, 2), (1, 1, 2, 2), stride=2, padding=[(0, 1), (0, 0)])
    np.testing.assert_array_equal(got, exact.conv_transpose(g, w, mirrored))
    assert not np.array_equal(got, exact.conv_transpose(g, w, spec))


def test_tf2onnx_valid_with_a_larger_output_shape_writes_negative_pads():
    """'VALID' with output_shape one row more than the minimum (output_padding 1): tf2onnx
    derives a total padding of -1, writes pads (0, -1), and onnxruntime refuses the model."""
    _needs("tf2onnx")
    spec = ConvSpec.transpose((1, 1, 2, 2), (1, 1, 2, 2), stride=2, output_padding=1)
    w, g = _data(spec)
    (known,) = tf2onnx_backend.input_grad_ways(spec, w, g).values()
    assert isinstance(known, KnownDifference) and isinstance(known.result, Broken)
    assert "onnxruntime" in known.result.reason
    row = _rows(spec, "tf2onnx")["tf2onnx(tf.nn.conv2d_transpose) -> onnxruntime"]
    assert row.status == "KNOWN"


# -- onnx2torch ---------------------------------------------------------------------------------

def test_onnx2torch_pads_pass_asymmetric_refused_output_shape_ignored():
    """Symmetric pads convert exactly; asymmetric pads are refused with onnx2torch's message;
    output_shape is ignored: the module returns the uncropped result (new)."""
    _needs("onnx2torch")
    rows = _rows(ORIGIN, "onnx2torch")
    assert rows["onnx2torch pads"].status == "PASS"
    spec = ConvSpec.transpose((1, 1, 2), (1, 1, 1), padding=[(1, 0)])
    g, w = np.array([[[3.0, 5.0]]], np.float32), np.array([[[2.0]]], np.float32)
    ways = onnx2torch_backend.input_grad_ways(spec, w, g)
    assert isinstance(ways["onnx2torch pads"], Refused)
    assert "non symmetrical padding" in ways["onnx2torch pads"].reason
    np.testing.assert_array_equal(exact.conv_transpose(g, w, spec), [[[10.0]]])
    known = ways["onnx2torch output_shape"]
    assert isinstance(known, KnownDifference) and "ignores" in known.reason
    np.testing.assert_array_equal(known.result, [[[6.0, 10.0]]])
    assert isinstance(ways["onnx2torch auto_pad"], NotExpressible)


def test_onnx2torch_same_upper_refused():
    _needs("onnx2torch")
    spec = ConvSpec.forward((1, 1, 6), (1, 1, 3), stride=2, padding="same")
    w, g = _data(spec)
    got = onnx2torch_backend.input_grad_ways(spec, w, g)["onnx2torch auto_pad"]
    assert isinstance(got, Refused) and "SAME_UPPER" in got.reason


# -- onnx2tf (in a child process) ---------------------------------------------------------------

def test_onnx2tf_pads_pass_in_tf_and_tflite_and_output_shape_is_refused():
    """The pads form converts and runs exactly in TF and in LiteRT; the output_shape form makes
    onnx2tf raise (IndexError), which is its refusal, not a crash of the sweep."""
    _needs("onnx2tf")
    rows = _rows(ORIGIN, "onnx2tf")
    assert rows["onnx2tf pads -> TF"].status == "PASS"
    assert rows["onnx2tf pads -> TFLite"].status == "PASS"
    assert rows["onnx2tf output_shape -> TF"].status == "REFUSED"
    assert "IndexError" in rows["onnx2tf output_shape -> TF"].note


def test_onnx2tf_reads_no_network(tmp_path):
    """A 4-d input with 3 channels makes onnx2tf load its sample images; the child's working
    directory holds a generated file of that name, so the conversion works offline."""
    _needs("onnx2tf")
    spec = ConvSpec.forward((1, 2, 4, 4), (3, 2, 3, 3), stride=2, padding="same")
    assert spec.output_shape[1] == 3 and len(spec.output_shape) == 4
    rows = _rows(spec, "onnx2tf")
    assert rows["onnx2tf pads -> TF"].status == "PASS"
    assert rows["onnx2tf pads -> TFLite"].status == "PASS"
    assert os.path.exists(os.path.join(onnx2tf_module._get_server().cwd,
                                       onnx2tf_module._CALIBRATION))


def test_onnx2tf_same_upper_converts_to_models_that_fail():
    """New: the plain SAME_UPPER node (x 4x4, k 3, stride 2: pads (0, 1)) converts, but the TF
    model fails in its oneDNN kernel and the .tflite's TRANSPOSE_CONV fails to prepare (it
    computes an input height of 3 for an input of 2): both ways FAIL with the runtime's message."""
    _needs("onnx2tf")
    spec = ConvSpec.forward((1, 2, 4, 4), (3, 2, 3, 3), stride=2, padding="same")
    w, g = _data(spec)
    ways = onnx2tf_backend.input_grad_ways(spec, w, g)
    for target in ("TF", "TFLite"):
        known = ways[f"onnx2tf auto_pad -> {target}"]
        assert isinstance(known, KnownDifference) and isinstance(known.result, Broken)
    assert "TRANSPOSE_CONV" in ways["onnx2tf auto_pad -> TFLite"].result.reason
    np.testing.assert_array_equal(ways["onnx2tf pads -> TFLite"], exact.conv_transpose(g, w, spec))


# -- nobuco (in a child process with Keras 2) ---------------------------------------------------

def test_nobuco_converts_refuses_output_padding_and_misses_kernel_below_stride():
    """A 2-d layer without output_padding converts exactly; output_padding is refused with
    nobuco's message; a 1-d layer whose kernel is shorter than the stride comes back one cell too
    long (Keras 'valid' keeps in*stride cells): x = 3*2 = [6], nobuco gives [6, 0] (new)."""
    _needs("nobuco")
    spec = ConvSpec.forward((1, 2, 5, 5), (3, 2, 3, 3), stride=2, padding=1)
    assert spec.output_padding == (0, 0)
    assert _rows(spec, "nobuco")["nobuco(nn.ConvTranspose2d) -> Keras"].status == "PASS"
    row = _rows(ORIGIN, "nobuco")["nobuco(nn.ConvTranspose2d) -> Keras"]
    assert row.status == "REFUSED" and "Output padding is not supported" in row.note
    spec = ConvSpec.transpose((1, 1, 1), (1, 1, 1), stride=2)
    g, w = np.array([[[3.0]]], np.float32), np.array([[[2.0]]], np.float32)
    (known,) = nobuco_backend.input_grad_ways(spec, w, g).values()
    assert isinstance(known, KnownDifference) and "shorter than the stride" in known.reason
    np.testing.assert_array_equal(known.result, [[[6.0, 0.0]]])
    np.testing.assert_array_equal(exact.conv_transpose(g, w, spec), [[[6.0]]])


def test_a_converter_that_does_not_answer_in_time_is_a_crash(monkeypatch):
    """The child running nobuco is given 1 ms: the way is CRASH with the reason, and the next
    call starts a new child."""
    _needs("nobuco")
    server = nobuco_module._get_server()
    server.call("convert_and_run", ORIGIN.__class__.transpose((1, 1, 2), (1, 1, 1)),
                np.ones((1, 1, 1), np.float32), np.ones((1, 1, 2), np.float32))
    monkeypatch.setattr(server, "timeout", 0.001)
    w, g = _data(ConvSpec.transpose((1, 1, 2), (1, 1, 2)))
    (got,) = nobuco_backend.input_grad_ways(ConvSpec.transpose((1, 1, 2), (1, 1, 2)), w,
                                            g).values()
    assert isinstance(got, Crashed) and "did not answer" in got.reason
    report = verify(ConvSpec.transpose((1, 1, 2), (1, 1, 2)), w, g, methods=(),
                    backends=("nobuco",))
    assert report.rows[0].status == "CRASH" and not report.passed


# -- the child process itself -------------------------------------------------------------------

def test_server_reports_errors_deaths_and_hangs(tmp_path):
    """A real child: a raised exception is a RemoteError with its message; os.abort() is a
    ServerCrashed naming SIGABRT and the last line printed; a hang past the timeout is a
    ServerCrashed; after each crash the next call runs in a new child; a closed stdin ends it."""
    (tmp_path / "tconv_child_probe.py").write_text(textwrap.dedent("""
        import os, sys, time
        def echo(x):
            print("noise on stdout does not disturb the answers")
            return x * 2
        def fail():
            raise ValueError("no such layer")
        def abort():
            print("about to abort", file=sys.stderr, flush=True)
            os.abort()
        def hang():
            time.sleep(60)
    """))
    server = Server("tconv_child_probe", cwd=str(tmp_path), timeout=5)
    try:
        assert server.call("echo", 21) == 42
        with pytest.raises(RemoteError, match="ValueError: no such layer"):
            server.call("fail")
        with pytest.raises(ServerCrashed, match="SIGABRT.*about to abort"):
            server.call("abort")
        assert server.call("echo", 1) == 2
        with pytest.raises(ServerCrashed, match="did not answer"):
            server.call("hang", timeout=0.5)
        assert server.call("echo", 3) == 6
        proc = server._proc               # a parent that dies only closes the child's stdin:
        proc.stdin.close()                # the child must leave at once, by itself
        assert proc.wait(timeout=30) == 0
    finally:
        server.close()


def test_sweep_tallies_refusals_in_their_own_column(tmp_path):
    """onnx2torch refuses asymmetric pads: the sweep counts REFUSED per way and does not treat a
    refusal as a disagreement. benchmarks/conformance.py turns the report into the table of
    docs/conformance.md: refusals, and the known output_shape bug with its reproduction."""
    _needs("onnx2torch")
    report = sweep(12, seed=4, dims=(1,), backends=("onnx2torch",))
    pads = report.tallies["onnx2torch pads"]
    assert pads["REFUSED"] > 0 and pads["FAIL"] == 0
    assert sum(pads.values()) == 12
    assert "onnx2torch pads" not in {d.key for d in report.disagreements}
    assert report.to_dict()["ways"]["onnx2torch pads"]["REFUSED"] == pads["REFUSED"]
    (tmp_path / "sweep.json").write_text(json.dumps(report.to_dict()))
    script = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "conformance.py")
    md = subprocess.run([sys.executable, script, str(tmp_path / "sweep.json")],
                        capture_output=True, text=True, check=True).stdout
    rows = {line.split("|")[1].strip(" `"): line for line in md.splitlines()
            if line.startswith("| `")}
    assert "refuses" in rows["onnx2torch pads"] and "wrong" not in rows["onnx2torch pads"]
    assert "**wrong**" in rows["onnx2torch output_shape"]
    assert "onnx2torch ignores output_shape" in md and "onnx2torch_output_shape.py" in md
