"""tconv against ONNX ConvTranspose, run by onnxruntime and by onnx.reference.

The named tests pin down each documented difference (the issue number is in the test name) by
building the ONNX node by hand, so they check the runtimes, not the backend's attribute choice.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import exact
from tconv import frameworks as backends
from tconv.frameworks import KnownDifference, NotExpressible
from tconv.ops import transpose
from tconv.spec import ConvSpec
from tconv.strategies import arrays_for, conv_specs
from tconv.verify import error_bound, verify

onnx_backend = backends.get("onnx")

pytest.importorskip("onnx")

PADS, SHAPE, AUTO = "ConvTranspose pads", "output_shape", "auto_pad"


def _ort():
    return pytest.importorskip("onnxruntime")


def _model(x_shape, w_shape, dtype=np.float32, **attrs):
    """One ConvTranspose node, X and W as inputs, built with onnx.helper."""
    from onnx import helper
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **attrs)
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("X", elem, x_shape),
                                            helper.make_tensor_value_info("W", elem, w_shape)],
                              [helper.make_tensor_value_info("Y", elem, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _run_ort(model, x, w):
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x, "W": w})[0]


def _run_ref(model, x, w):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(model).run(None, {"X": x, "W": w})[0]


def _way(ways, runtime, form):
    (key,) = [k for k in ways if k.startswith(runtime + " ") and k.endswith(form)]
    return ways[key]


def _pads_expressible(spec):
    """The pads form fails only where output_padding >= stride and pad_high cannot absorb it."""
    return all(op < s or hi >= op - s + 1
               for (_, hi), op, s in zip(spec.padding, spec.output_padding, spec.stride))


def _reference_group_bug(spec):
    return spec.groups > 1 and (spec.out_channels > spec.groups or spec.in_channels > spec.groups)


def _check_ways(spec, ways, expected, close, runtimes=("onnxruntime", "onnx.reference")):
    """Every result is right, every known difference sits in its region, every refusal is one
    of the documented ones; ``runtimes`` are those that take the data's dtype."""
    assert list(ways) == onnx_backend.way_names(spec.ndim)
    for name, result in ways.items():
        reference = name.startswith("onnx.reference")
        if isinstance(result, NotExpressible):
            if not name.startswith(runtimes):
                continue
            if name.endswith(PADS):
                assert not _pads_expressible(spec) or (
                    reference and _reference_group_bug(spec)), (name, result.reason)
            continue
        if isinstance(result, KnownDifference):
            assert reference, name
            if "#8446" in result.reason:
                assert _reference_group_bug(spec)
            else:
                assert "#4527" in result.reason and name.endswith(SHAPE)
                assert any(lo > 0 for lo, _ in spec.padding)
            continue
        if name.endswith(PADS):
            assert _pads_expressible(spec)
        assert result.shape == spec.input_shape, name
        close(result, expected, name)


@settings(max_examples=120)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_every_way_within_float32_bound(spec, seed):
    """In float32 (normal data) every ONNX way that expresses the spec stays within the rounding
    bound of the exact result; 1-d to 3-d, groups, dilation, asymmetric padding,
    output_padding."""
    _ort()
    _, w, g = arrays_for(spec, seed, np.float32)
    truth = exact.conv_transpose(g, w, spec)
    bound = error_bound(g, w, spec, truth, np.float32)

    def close(result, expected, name):
        assert result.dtype == np.float32, name
        assert np.all(np.abs(result.astype(np.float64) - expected) <= bound), name

    _check_ways(spec, onnx_backend.input_grad_ways(spec, w, g), truth, close)


@settings(max_examples=80)
@given(spec=conv_specs(dims=(1, 2, 3, 4)), seed=st.integers(0, 2**16))
def test_reference_float64_equals_scatter(spec, seed):
    """In float64 on integer-valued data onnx.reference equals the scatter reference to the last
    bit (1-d to 4-d); onnxruntime has no float64 ConvTranspose kernel and says so."""
    _, w, g = (a.astype(np.float64) for a in arrays_for(spec, seed))
    ways = onnx_backend.input_grad_ways(spec, w, g)

    def equal(result, expected, name):
        np.testing.assert_array_equal(result, expected, err_msg=name)

    _check_ways(spec, ways, transpose(g, w, spec, "scatter"), equal, ("onnx.reference",))
    for name, result in ways.items():
        if name.startswith("onnxruntime"):
            assert isinstance(result, NotExpressible), name
    if _pads_expressible(spec):
        assert "float64" in _way(ways, "onnxruntime", PADS).reason


CASES = {
    "1-d, stride > kernel": ConvSpec.transpose((2, 2, 4), (2, 3, 2), stride=5,
                                               padding=((1, 2),), output_padding=3),
    "3-d": ConvSpec.transpose((1, 2, 2, 3, 2), (2, 3, 2, 2, 3), stride=(2, 1, 3),
                              padding=((1, 0), (0, 1), (1, 1)), output_padding=(1, 0, 2)),
    "4-d": ConvSpec.transpose((1, 2, 2, 2, 2, 2), (2, 1, 2, 1, 2, 2), stride=(2, 1, 1, 3),
                              padding=((1, 0), (0, 0), (1, 1), (0, 1)),
                              output_padding=(1, 0, 0, 2)),
    "stride > kernel, 2-d": ConvSpec.transpose((1, 1, 3, 2), (1, 2, 2, 1), stride=(4, 3),
                                               padding=((1, 0), (0, 0)), output_padding=(3, 2)),
    "dilation, stride, output_padding": ConvSpec.transpose(
        (2, 2, 4, 3), (2, 2, 3, 2), stride=(2, 3), dilation=(3, 2), padding=(2, 1),
        output_padding=(1, 2)),
    "groups 3, 2 in and 2 out per group": ConvSpec.transpose(
        (1, 6, 3, 4), (6, 2, 3, 2), stride=2, dilation=(1, 2), padding=((1, 0), (1, 2)),
        output_padding=1, groups=3),
    "depthwise, groups 4": ConvSpec.transpose((2, 4, 5), (4, 1, 3), stride=2, padding=1,
                                              output_padding=1, groups=4),
}


@pytest.mark.parametrize("case", CASES)
def test_named_shapes_equal_scatter(case):
    """Hand-picked shapes (1-d with stride > kernel, 3-d, 4-d, dilation with stride and
    output_padding, groups with several channels per group): onnxruntime's pads form equals the
    scatter reference exactly on integer-valued float32 data, and so does every other way that
    expresses the spec without a known difference."""
    _ort()
    spec = CASES[case]
    _, w, g = (a.astype(np.float32) for a in arrays_for(spec, 7))
    expected = transpose(g.astype(np.float64), w.astype(np.float64), spec, "scatter")
    ways = onnx_backend.input_grad_ways(spec, w, g)
    assert isinstance(_way(ways, "onnxruntime", PADS), np.ndarray)
    _check_ways(spec, ways, expected,
                lambda r, e, name: np.testing.assert_array_equal(r, e, err_msg=name))


def test_onnxruntime_dilation_with_stride_issue_2518():
    """onnxruntime#2518: ConvTranspose used ``kernel + dilation - 1`` for the dilated kernel, so
    the issue's node (X 50x50, kernel 3x5, dilations (3, 1), strides (2, 1), pads (4, 2, 4, 2))
    gave 95 rows instead of 2*49 + 7 - 8 = 97. Fixed (onnxruntime PR #2688): the shape and the
    values equal tconv, with and without output_padding."""
    _ort()
    rng = np.random.default_rng(2518)
    g = rng.integers(-5, 6, (1, 1, 50, 50)).astype(np.float32)
    w = rng.integers(-5, 6, (1, 3, 3, 5)).astype(np.float32)
    for op in (0, 1):
        model = _model(list(g.shape), list(w.shape), kernel_shape=[3, 5], dilations=[3, 1],
                       strides=[2, 1], pads=[4, 2, 4, 2], output_padding=[op, 0])
        got = _run_ort(model, g, w)
        assert got.shape == (1, 3, 97 + op, 50)
        want = tconv.conv_transpose(g.astype(np.float64), w.astype(np.float64), stride=(2, 1),
                                    padding=(4, 2), dilation=(3, 1), output_padding=(op, 0))
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("run", [_run_ort, _run_ref], ids=["onnxruntime", "onnx.reference"])
def test_same_upper_odd_cell_at_the_end_issue_9370(run):
    """onnxruntime#9370: ConvTranspose had SAME_UPPER and SAME_LOWER reversed (odd cell of the
    total padding at the start for SAME_UPPER). Fixed in onnxruntime 1.13 (PR #12537): with
    X = [1, 2, 3], W = [1, 1, 1, 1], stride 2 and output_padding 1 the full result is
    [1, 1, 3, 3, 5, 5, 3, 3] + [0], total padding 2*2 + 1 + 4 - 6 = 3; SAME_UPPER crops 1 at the
    start and 2 at the end, SAME_LOWER 2 and 1, as the ONNX text says."""
    if run is _run_ort:
        _ort()
    x, w = np.array([[[1, 2, 3]]], np.float32), np.ones((1, 1, 4), np.float32)
    results = {}
    for mode in ("SAME_UPPER", "SAME_LOWER"):
        model = _model([1, 1, 3], [1, 1, 4], strides=[2], auto_pad=mode, output_padding=[1])
        results[mode] = run(model, x, w)
    np.testing.assert_array_equal(results["SAME_UPPER"], [[[1, 3, 3, 5, 5, 3]]])
    np.testing.assert_array_equal(results["SAME_LOWER"], [[[3, 3, 5, 5, 3, 3]]])
    np.testing.assert_array_equal(
        results["SAME_UPPER"], tconv.conv_transpose(x, w, stride=2, padding=[(1, 2)],
                                                    output_padding=1))
    np.testing.assert_array_equal(
        results["SAME_LOWER"], tconv.conv_transpose(x, w, stride=2, padding=[(2, 1)],
                                                    output_padding=1))


@pytest.mark.parametrize("run", [_run_ort, _run_ref], ids=["onnxruntime", "onnx.reference"])
def test_output_padding_with_same_moves_pads_issue_4299(run):
    """onnx#4299: with auto_pad SAME the output is X * stride whatever output_padding says;
    output_padding only enlarges the total padding. The issue's node (X 3x3, W 3x3, strides 2,
    SAME_UPPER) is 6x6 with pads (0, 0, 1, 1); with output_padding (1, 1) it stays 6x6 and the
    pads become (1, 1, 1, 1) -- tconv's padding 1, output_padding 1."""
    if run is _run_ort:
        _ort()
    rng = np.random.default_rng(4299)
    x = rng.integers(-5, 6, (1, 2, 3, 3)).astype(np.float32)
    w = rng.integers(-5, 6, (2, 1, 3, 3)).astype(np.float32)
    for op, padding in ((0, [(0, 1), (0, 1)]), (1, 1)):
        model = _model([1, 2, 3, 3], [2, 1, 3, 3], strides=[2, 2], auto_pad="SAME_UPPER",
                       output_padding=[op, op])
        got = run(model, x, w)
        assert got.shape == (1, 1, 6, 6)
        np.testing.assert_array_equal(got, tconv.conv_transpose(
            x.astype(np.float64), w.astype(np.float64), stride=2, padding=padding,
            output_padding=op))


def test_reference_group_path_pr_8446():
    """onnx PR #8446: onnx.reference's group > 1 path wrote each group's M/group output channels
    into one channel slot (and slices W by M/group rows), so only C/group == M/group == 1 works.
    In the installed onnx it either raises (the bug) or equals tconv (fixed); the backend reports
    the former as not expressible and wraps the latter as a known difference, which verify
    turns into PASS. Depthwise (1 and 1 per group) works in any version."""
    for c_out, c_in, groups in ((4, 4, 2), (6, 4, 2), (2, 6, 2), (3, 3, 3)):
        spec = ConvSpec.transpose((2, c_out, 3), (c_out, c_in // groups, 3), stride=2,
                                  padding=1, output_padding=1, groups=groups)
        _, w, g = (a.astype(np.float64) for a in arrays_for(spec, 8446))
        want = transpose(g, w, spec, "scatter")
        model = _model(list(g.shape), list(w.shape), np.float64, kernel_shape=[3], strides=[2],
                       pads=[1, 1], output_padding=[1], group=groups)
        ways = onnx_backend.input_grad_ways(spec, w, g)
        way = _way(ways, "onnx.reference", PADS)
        if c_out == c_in == groups:
            np.testing.assert_array_equal(_run_ref(model, g, w), want)
            np.testing.assert_array_equal(way, want)
            continue
        try:
            got = _run_ref(model, g, w)
        except ValueError:
            assert isinstance(way, NotExpressible) and "#8446" in way.reason
        else:
            np.testing.assert_array_equal(got, want)
            assert isinstance(way, KnownDifference) and "#8446" in way.reason


def test_reference_output_shape_keeps_zero_pads_issue_4527():
    """onnx#4527: with output_shape and auto_pad NOTSET the ONNX text derives
    total = stride*(X-1) + output_padding + K - output_shape and pads total - total//2 at the
    start; onnxruntime does, onnx.reference keeps pads 0. X = [1, 2, 3], W = [1, 1, 1],
    stride 2, output_padding 1, output_shape 7: the full result is [1, 1, 3, 2, 5, 3, 3] + [0],
    total 1; onnxruntime crops one cell at the start, onnx.reference none."""
    _ort()
    x, w = np.array([[[1, 2, 3]]], np.float32), np.ones((1, 1, 3), np.float32)
    model = _model([1, 1, 3], [1, 1, 3], strides=[2], output_shape=[7], output_padding=[1])
    np.testing.assert_array_equal(_run_ort(model, x, w), [[[1, 3, 2, 5, 3, 3, 0]]])
    np.testing.assert_array_equal(_run_ref(model, x, w), [[[1, 1, 3, 2, 5, 3, 3]]])

    spec = ConvSpec.transpose(x.shape, w.shape, stride=2, padding=[(1, 0)], output_padding=1)
    ways = onnx_backend.input_grad_ways(spec, w, x)
    want = tconv.conv_transpose(x, w, stride=2, padding=[(1, 0)], output_padding=1)
    np.testing.assert_array_equal(_way(ways, "onnxruntime", SHAPE), want)
    known = _way(ways, "onnx.reference", SHAPE)
    assert isinstance(known, KnownDifference) and "#4527" in known.reason
    # where the zero pads do not even fit the sizes, the reference raises: not expressible
    spec = ConvSpec.transpose(x.shape, w.shape, stride=2, padding=1, output_padding=1)
    refused = _way(onnx_backend.input_grad_ways(spec, w, x), "onnx.reference", SHAPE)
    assert isinstance(refused, NotExpressible) and "#4527" in refused.reason


def test_verify_reports_known_and_not_expressible():
    """Through tconv.verify: the onnx.reference output_shape row of the
    #4527 spec is KNOWN, the float64 onnxruntime rows are N/A, every other row passes."""
    _ort()
    spec = ConvSpec.transpose((1, 1, 3), (1, 1, 3), stride=2, padding=[(1, 0)], output_padding=1)
    _, w, g = arrays_for(spec, 3)
    for dtype in (np.float32, np.float64):
        report = verify(spec, w.astype(dtype), g.astype(dtype), methods=("scatter",),
                        backends=("onnx",))
        rows = {row.name: row for row in report.rows}
        assert report.passed
        assert rows["onnx.reference output_shape"].status == "KNOWN"
        assert rows["onnx.reference ConvTranspose pads"].status == "PASS"
        assert rows["onnxruntime ConvTranspose pads"].status == (
            "N/A" if dtype == np.float64 else "PASS")


def test_output_padding_of_stride_or_more_refused():
    """tconv (like PyTorch) allows output_padding < max(stride, dilation); both ONNX runtimes
    refuse output_padding >= stride. The pads form moves the excess into pads_end where the end
    padding can take it, else says why."""
    _ort()
    rng = np.random.default_rng(5)
    g = rng.integers(-5, 6, (1, 1, 3)).astype(np.float32)
    w = rng.integers(-5, 6, (1, 1, 2)).astype(np.float32)
    model = _model([1, 1, 3], [1, 1, 2], dilations=[3], output_padding=[2])
    with pytest.raises(Exception, match="output_padding"):
        _run_ort(model, g, w)
    with pytest.raises(ValueError):
        _run_ref(model, g, w)
    absorbed = ConvSpec.transpose(g.shape, w.shape, dilation=3, padding=[(0, 2)],
                                  output_padding=2)
    ways = onnx_backend.input_grad_ways(absorbed, w, g)
    np.testing.assert_array_equal(_way(ways, "onnxruntime", PADS),
                                  transpose(g, w, absorbed, "scatter"))
    refused = ConvSpec.transpose(g.shape, w.shape, dilation=3, padding=[(0, 1)],
                                 output_padding=2)
    why = _way(onnx_backend.input_grad_ways(refused, w, g), "onnxruntime", PADS)
    assert isinstance(why, NotExpressible)
    assert "output_padding 2 >= stride 1" in why.reason


@pytest.mark.parametrize("run", [_run_ort, _run_ref], ids=["onnxruntime", "onnx.reference"])
def test_same_with_negative_total_padding(run):
    """With K + output_padding < stride the SAME total padding is negative: X = [1, 2], W = [1],
    stride 3 gives the full result [1, 0, 0, 2] and total 1 - 3 = -2. onnx.reference pads
    -1 / -1 (output 6 = X * stride, as ONNX says); onnxruntime clamps the total at 0 (output 4).
    The backend never builds such a node: output_padding 2 makes the total 0."""
    if run is _run_ort:
        _ort()
    x, w = np.array([[[1, 2]]], np.float32), np.ones((1, 1, 1), np.float32)
    model = _model([1, 1, 2], [1, 1, 1], strides=[3], auto_pad="SAME_UPPER")
    want = [[[1, 0, 0, 2]]] if run is _run_ort else [[[0, 1, 0, 0, 2, 0]]]
    np.testing.assert_array_equal(run(model, x, w), want)
    spec = ConvSpec.transpose(x.shape, w.shape, stride=3, output_padding=2)
    ways = onnx_backend.input_grad_ways(spec, w, x)
    runtime = "onnxruntime" if run is _run_ort else "onnx.reference"
    np.testing.assert_array_equal(_way(ways, runtime, AUTO), [[[1, 0, 0, 2, 0, 0]]])


@settings(max_examples=60)
@given(spec=conv_specs(dims=(1, 2), max_groups=1, output_padding=False, symmetric=True),
       seed=st.integers(0, 2**16))
def test_tconv_same_and_symmetric_specs_are_expressible(spec, seed):
    """Every 'same' transposed convolution (size input * stride, odd cell high) is expressible by
    auto_pad, and every symmetric-padding spec with output_padding < stride by pads and by
    output_shape; all equal scatter."""
    _ort()
    same = ConvSpec.transpose(spec.output_shape, spec.weight_shape, stride=spec.stride,
                              dilation=spec.dilation, padding="same",
                              output_size=[o * s for o, s in zip(spec.output_size, spec.stride)])
    _, w, g = (a.astype(np.float32) for a in arrays_for(same, seed))
    ways = onnx_backend.input_grad_ways(same, w, g)
    want = transpose(g, w, same, "scatter")
    for runtime in ("onnxruntime", "onnx.reference"):
        np.testing.assert_array_equal(_way(ways, runtime, AUTO), want)
    _, w, g = (a.astype(np.float32) for a in arrays_for(spec, seed))
    ways = onnx_backend.input_grad_ways(spec, w, g)
    want = transpose(g, w, spec, "scatter")
    np.testing.assert_array_equal(_way(ways, "onnxruntime", PADS), want)
    np.testing.assert_array_equal(_way(ways, "onnxruntime", SHAPE), want)


def test_dtypes():
    """float16: both runtimes within the float16 bound (onnxruntime computes in float32 and rounds
    once); float64: onnx.reference only; integers: no ONNX ConvTranspose type."""
    _ort()
    spec = CASES["groups 3, 2 in and 2 out per group"]
    _, w, g = arrays_for(spec, 16, np.float16)
    truth = exact.conv_transpose(g, w, spec)
    bound = error_bound(g, w, spec, truth, np.float16)
    ways = onnx_backend.input_grad_ways(spec, w, g)
    result = _way(ways, "onnxruntime", PADS)
    assert result.dtype == np.float16
    assert np.all(np.abs(result.astype(np.float64) - truth) <= bound)

    _, w, g = arrays_for(spec, 64, np.float64)
    why = _way(onnx_backend.input_grad_ways(spec, w, g), "onnxruntime", PADS)
    assert isinstance(why, NotExpressible) and "float64" in why.reason

    _, w, g = arrays_for(spec, 1)
    for name, result in onnx_backend.input_grad_ways(spec, w, g).items():
        assert isinstance(result, NotExpressible) and "int64" in result.reason, name


def test_without_onnxruntime(monkeypatch):
    """Without onnxruntime the onnx.reference ways still run; the onnxruntime ways say why not."""
    from tconv.frameworks import onnx as onnx_module

    monkeypatch.setattr(onnx_module, "_ort_available", lambda: False)
    spec = ConvSpec.transpose((1, 1, 2, 2), (1, 1, 3, 3), stride=2, padding=1, output_padding=1)
    _, w, g = (a.astype(np.float32) for a in arrays_for(spec, 0))
    ways = onnx_backend.input_grad_ways(spec, w, g)
    assert ways["onnxruntime ConvTranspose pads"] == NotExpressible("onnxruntime is not installed")
    np.testing.assert_array_equal(ways["onnx.reference ConvTranspose pads"],
                                  transpose(g, w, spec, "scatter"))
    assert backends.available("onnx")
