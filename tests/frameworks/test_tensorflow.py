"""tconv against TensorFlow: tf.GradientTape, tf.nn.conv{1,2,3}d_transpose, the depthwise input
gradient, and the conventions and CPU limits of the installed TensorFlow."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import exact
from tconv.frameworks import KnownDifference, NotExpressible
from tconv.ops import transpose
from tconv.spec import ConvSpec
from tconv.strategies import arrays_for, conv_specs
from tconv.verify import error_bound

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
from tconv import frameworks  # noqa: E402
from tconv.frameworks import tensorflow as tf_module  # noqa: E402

backend = frameworks.get("tensorflow")

TAPE, DEPTHWISE = "tf.GradientTape(tf.nn.convolution)", "tf.nn.depthwise_conv2d_backprop_input"
CPU_DILATION = "do not yet support dilation rates larger than 1"
CPU_GROUPS = "Gradients for grouped convolutions are not supported on CPU"


def _transpose_way(nd, crop=False):
    return f"tf.nn.conv{nd}d_transpose" + (" VALID + crop" if crop else "")


def _last(a):
    """(N, C, *spatial) -> TF's (N, *spatial, C)."""
    return tf.constant(np.moveaxis(a, 1, -1))


def _first(t):
    return np.moveaxis(t.numpy(), -1, 1)


def _filters(w):
    """(C_out, C_in/groups, *k) -> [*k, C_in/groups, C_out]."""
    return tf.constant(np.transpose(w, tuple(range(2, w.ndim)) + (1, 0)))


def _check_ways(spec, w, g, exact_equal=True):
    """Every expressible way has spec.input_shape and g's dtype and equals the scatter reference
    (exactly on integer-valued data, else within the error bound); returns the results."""
    ways = backend.input_grad_ways(spec, w, g)
    assert list(ways) == backend.way_names(spec.ndim)
    if exact_equal:
        want = transpose(g, w, spec, "scatter")
    else:
        want = exact.conv_transpose(g, w, spec)
        bound = error_bound(g, w, spec, want)
    for name, got in ways.items():
        assert not isinstance(got, KnownDifference), name
        if isinstance(got, NotExpressible):
            assert got.reason, name
            continue
        assert got.shape == spec.input_shape and got.dtype == g.dtype, name
        if exact_equal:
            np.testing.assert_array_equal(got, want, err_msg=f"{name}: {spec.describe()}")
        else:
            diff = np.abs(got.astype(np.float64) - want)
            assert np.all(diff <= bound), (name, spec.describe(), diff.max(), bound.max())
    return ways


# -- every way against the reference ---------------------------------------------------------

@settings(max_examples=200)
@given(spec=conv_specs(max_groups=1, max_dilation=1), seed=st.integers(0, 2**16))
def test_every_way_equals_scatter(spec, seed):
    """1-3 dims, asymmetric padding, output_padding, stride > kernel; float64 with
    integer-valued data, so TF and the reference are both exact and must be equal. Without
    dilation and groups, the tape and the cropped VALID transpose express every spec, and
    conv{N}d_transpose every 2-d spec (explicit padding)."""
    _, w, g = arrays_for(spec, seed, np.int64)
    ways = _check_ways(spec, w.astype(np.float64), g.astype(np.float64))
    nd = spec.ndim
    assert not isinstance(ways[TAPE], NotExpressible)
    assert not isinstance(ways[_transpose_way(nd, crop=True)], NotExpressible)
    if nd == 2:
        assert not isinstance(ways[_transpose_way(2)], NotExpressible)


@settings(max_examples=120)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_any_spec_gives_a_result_or_a_reason(spec, seed):
    """Groups, dilation > stride, 3-d: never an exception; what runs is exact, what doesn't
    names the CPU limit. Ungrouped stride-1 dilated convolutions still work through the tape."""
    _, w, g = arrays_for(spec, seed, np.int64)
    ways = _check_ways(spec, w.astype(np.float64), g.astype(np.float64))
    strided = any(s > 1 for s in spec.stride)
    dilated = any(d > 1 for d in spec.dilation)
    tape = ways[TAPE]
    if spec.groups == 1 and not (strided and dilated):
        assert not isinstance(tape, NotExpressible), tape
    elif spec.groups > 1:
        assert "group" in tape.reason
    else:
        assert "strides > 1 together with dilations > 1" in tape.reason
    for name in (_transpose_way(spec.ndim), _transpose_way(spec.ndim, crop=True)):
        if dilated:
            assert "tensorflow#69103" in ways[name].reason
        elif spec.groups > 1:
            assert "group" in ways[name].reason


@settings(max_examples=60)
@given(spec=conv_specs(max_groups=1, max_stride=1, max_dilation=3), seed=st.integers(0, 2**16))
def test_dilated_gradient_tape(spec, seed):
    """Stride 1 with dilation up to 3 in 1-3 dims: tf.nn.convolution's SpaceToBatchND path has
    an undilated gradient, so the tape works on CPU where the transposed ops refuse."""
    _, w, g = arrays_for(spec, seed, np.int64)
    ways = _check_ways(spec, w.astype(np.float64), g.astype(np.float64))
    assert not isinstance(ways[TAPE], NotExpressible)


@st.composite
def depthwise_specs(draw):
    """2-d, groups == C_in (one input channel per group), multiplier C_out/groups 1..3, equal
    strides, asymmetric padding, output_padding."""
    groups = draw(st.integers(1, 3))
    mult = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(2))
    out = tuple(draw(st.integers(1, 3)) for _ in range(2))
    ops = tuple(draw(st.integers(0, stride - 1)) for _ in range(2))
    pads = []
    for o, k, op in zip(out, kernel, ops):
        room = ConvSpec.transposed_size(o, k, stride, (0, 0), 1, op) - 1
        lo = draw(st.integers(0, min(2, room)))
        pads.append((lo, draw(st.integers(0, min(2, room - lo)))))
    batch = draw(st.integers(1, 2))
    return ConvSpec.transpose((batch, groups * mult) + out, (groups * mult, 1) + kernel,
                              stride=stride, padding=tuple(pads), output_padding=ops,
                              groups=groups)


@settings(max_examples=80)
@given(spec=depthwise_specs(), seed=st.integers(0, 2**16))
def test_depthwise_backprop_input_groups(spec, seed):
    """groups == C_in > 1 with C_out/groups up to 3: the only grouped input gradient the TF CPU
    kernels compute. Its filter is [kh, kw, C_in, multiplier], output channel c*mult + m."""
    _, w, g = arrays_for(spec, seed, np.int64)
    ways = _check_ways(spec, w.astype(np.float64), g.astype(np.float64))
    assert not isinstance(ways[DEPTHWISE], NotExpressible), ways[DEPTHWISE]
    if spec.groups > 1:
        assert isinstance(ways[TAPE], NotExpressible)


@settings(max_examples=60)
@given(spec=conv_specs(max_groups=1, max_dilation=1), seed=st.integers(0, 2**16),
       dtype=st.sampled_from([np.float32, np.float16]))
def test_float32_and_float16_within_bound(spec, seed, dtype):
    """Random normal float32 / float16 data: every way is within the rounding bound of the
    exact result, and keeps the dtype."""
    _, w, g = arrays_for(spec, seed, dtype)
    _check_ways(spec, w, g, exact_equal=False)


@settings(max_examples=40)
@given(spec=conv_specs(dims=(1, 2), max_groups=1, max_dilation=1), seed=st.integers(0, 2**16))
def test_int32_conv_transpose_is_exact(spec, seed):
    """Conv2DBackpropInput has an int32 CPU kernel (1-d runs through it too): the transposed
    ways are exact on int32; the tape cannot differentiate integers."""
    _, w, g = arrays_for(spec, seed, np.int32)
    ways = _check_ways(spec, w, g)
    assert "floating tensors only" in ways[TAPE].reason
    assert not isinstance(ways[_transpose_way(spec.ndim, crop=True)], NotExpressible)


def test_origin_experiment():
    """1x1x4x4, 3x3 kernel, stride 2, padding 1: all four ways agree with tconv. Padding 1 on
    both sides is not TF's 'SAME' here (SAME pads 0 before, 1 after), so conv2d_transpose
    uses explicit padding."""
    spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
    _, w, g = arrays_for(spec, 3, np.int64)
    ways = _check_ways(spec, w.astype(np.float64), g.astype(np.float64))
    assert not any(isinstance(r, NotExpressible) for r in ways.values())
    # with 'SAME', TF computes the gradient of the ((0, 1), (0, 1))-padded convolution instead
    same = tf.nn.conv2d_transpose(_last(g.astype(np.float64)), _filters(w.astype(np.float64)),
                                  [1, 4, 4, 1], 2, "SAME")
    want = tconv.conv_transpose(g.astype(np.float64), w.astype(np.float64), stride=2,
                                padding=((0, 1), (0, 1)), output_size=(4, 4))
    np.testing.assert_array_equal(_first(same), want)
    assert not np.array_equal(want, ways[_transpose_way(2)])


def test_four_spatial_dims_not_expressible():
    """TF convolves 1-3 spatial dims: a 4-d spec is a reason, not an exception."""
    spec = ConvSpec.forward((1, 1, 3, 3, 3, 3), (1, 1, 2, 2, 2, 2))
    _, w, g = arrays_for(spec, 0, np.float64)
    ways = backend.input_grad_ways(spec, w, g)
    assert all(isinstance(r, NotExpressible) and "has 4" in r.reason for r in ways.values())


def test_unsupported_dtypes_are_reasons():
    """int64 has no TF convolution kernel; int32 has no 3-d one and no depthwise one."""
    spec = ConvSpec.forward((1, 2, 5, 5), (2, 2, 3, 3))
    _, w, g = arrays_for(spec, 0, np.int64)
    assert all("not int64" in r.reason for r in backend.input_grad_ways(spec, w, g).values())
    spec3 = ConvSpec.forward((1, 1, 3, 3, 3), (1, 1, 2, 2, 2))
    _, w, g = arrays_for(spec3, 0, np.int32)
    assert "not int32" in backend.input_grad_ways(spec3, w, g)[_transpose_way(3)].reason
    with pytest.raises(tf.errors.InvalidArgumentError, match="int32"):
        tf.nn.conv3d_transpose(_last(g), _filters(w), [1, 3, 3, 3, 1], 1, "VALID")


# -- TF's conventions, demonstrated ----------------------------------------------------------

@pytest.mark.parametrize("n, k, s, pads", [
    (7, 4, 2, (1, 2)),  # out ceil(7/2)=4, total (4-1)*2+4-7=3: 1 before, the odd 2nd after
    (8, 3, 3, (0, 1)),  # out 3, total 2*3+3-8=1: all of it after
    (6, 5, 1, (2, 2)),  # out 6, total 4: even, split
    (5, 2, 3, (0, 0)),  # out 2, total max(3+2-5, 0)=0
    (4, 3, 2, (0, 1)),  # the origin experiment's dims: 'SAME' is not padding 1
])
def test_same_padding_size_and_odd_pixel_at_the_end(n, k, s, pads):
    """'SAME': output ceil(in/stride); total padding max((out-1)*stride + k - in, 0), the odd
    cell after (bottom/right): equal to an explicit tf.pad with the pairs worked out by hand,
    to tconv's padding='same', and its gradient to conv2d_transpose(..., 'SAME')."""
    rng = np.random.default_rng(n * 100 + k * 10 + s)
    x = rng.integers(-4, 5, (1, 2, n, n)).astype(np.float64)
    w = rng.integers(-4, 5, (3, 2, k, k)).astype(np.float64)
    same = tf.nn.conv2d(_last(x), _filters(w), s, "SAME")
    assert same.shape[1:3] == (-(-n // s),) * 2
    explicit = tf.nn.conv2d(_last(x), _filters(w), s, [[0, 0], list(pads), list(pads), [0, 0]])
    np.testing.assert_array_equal(same, explicit)
    np.testing.assert_array_equal(_first(same), tconv.conv(x, w, stride=s, padding="same"))
    g = rng.integers(-4, 5, same.shape).astype(np.float64)
    got = tf.nn.conv2d_transpose(tf.constant(g), _filters(w), [1, n, n, 2], s, "SAME")
    want = tconv.conv_input_grad(x.shape, w, np.moveaxis(g, -1, 1), stride=s, padding="same")
    np.testing.assert_array_equal(_first(got), want)


def test_output_shape_chooses_among_input_sizes():
    """A 3x3 kernel at stride 2 maps inputs 7 and 8 to 3 outputs ('VALID'), inputs 5 and 6
    ('SAME'): output_shape accepts exactly those and picks one; any other size is refused. The
    8th row is reached by no window, so its gradient is zero: output_padding 1."""
    rng = np.random.default_rng(7)
    g = rng.integers(-4, 5, (1, 2, 3, 3)).astype(np.float64)
    w = rng.integers(-4, 5, (2, 1, 3, 3)).astype(np.float64)
    results = {}
    for padding, sizes in (("VALID", (7, 8)), ("SAME", (5, 6))):
        for n in range(3, 11):
            call = lambda: tf.nn.conv2d_transpose(_last(g), _filters(w), [1, n, n, 1], 2, padding)
            if n not in sizes:
                with pytest.raises(tf.errors.InvalidArgumentError, match="doesn't match computed"):
                    call()
                continue
            results[padding, n] = got = _first(call())
            want = tconv.conv_transpose(g, w, stride=2, padding=padding.lower(),
                                        output_size=(n, n))
            np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(results["VALID", 8][..., :7, :7], results["VALID", 7])
    assert not results["VALID", 8][..., 7, :].any() and not results["VALID", 8][..., 7].any()
    spec = ConvSpec.transpose(g.shape, w.shape, stride=2, output_size=(8, 8))
    assert spec.output_padding == (1, 1)


def test_cpu_backprop_input_rejects_dilation():
    """tensorflow#69103, still so in the installed TF: a dilated tf.nn.conv2d runs forward on CPU
    (equal to tconv.conv), but its gradient and conv{1,2,3}d_transpose with dilation 2 raise
    InvalidArgumentError; tf.nn.convolution at stride 1 routes dilation through SpaceToBatchND
    and its gradient works."""
    rng = np.random.default_rng(69103)
    x = rng.integers(-4, 5, (1, 2, 7, 7)).astype(np.float64)
    w = rng.integers(-4, 5, (3, 2, 3, 3)).astype(np.float64)
    xt = _last(x)
    y = tf.nn.conv2d(xt, _filters(w), 1, "VALID", dilations=2)
    np.testing.assert_array_equal(_first(y), tconv.conv(x, w, dilation=2))
    g = tf.constant(rng.integers(-4, 5, y.shape).astype(np.float64))
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.nn.conv2d(xt, _filters(w), 1, "VALID", dilations=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=CPU_DILATION):
        tape.gradient(y, xt, g)
    for nd in (1, 2, 3):  # input 7, kernel 3, dilation 2: extent 5, 3 outputs per dim
        spec = ConvSpec.forward((1, 2) + (7,) * nd, (3, 2) + (3,) * nd, dilation=2)
        ones_w, ones_g = np.ones(spec.weight_shape), np.ones(spec.output_shape)
        with pytest.raises(tf.errors.InvalidArgumentError, match="dilation rates larger than 1"):
            getattr(tf.nn, f"conv{nd}d_transpose")(_last(ones_g), _filters(ones_w),
                                                   [1] + [7] * nd + [2], 1, "VALID", dilations=2)
        reason = backend.input_grad_ways(spec, ones_w, ones_g)[_transpose_way(nd)].reason
        assert "tensorflow#69103" in reason
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.nn.convolution(xt, _filters(w), dilations=2)
    want = tconv.conv_input_grad(x.shape, w, np.moveaxis(g.numpy(), -1, 1), dilation=2)
    np.testing.assert_array_equal(_first(tape.gradient(y, xt, g)), want)


def test_convolution_rejects_stride_with_dilation():
    """tf.nn.convolution refuses stride > 1 with dilation > 1 even in different dims; the
    adapter reports it (the direct conv2d's gradient would hit tensorflow#69103)."""
    x, f = tf.ones((1, 7, 7, 1)), tf.ones((3, 3, 1, 1))
    with pytest.raises(ValueError, match="not supported in conjunction"):
        tf.nn.convolution(x, f, strides=[2, 1], dilations=[1, 2])
    spec = ConvSpec.forward((1, 1, 7, 7), (1, 1, 3, 3), stride=(2, 1), dilation=(1, 2))
    reason = backend.input_grad_ways(spec, np.ones(spec.weight_shape),
                                     np.ones(spec.output_shape))[TAPE].reason
    assert "strides > 1 together with dilations > 1" in reason and "#69103" in reason


def test_grouped_gradients_rejected_on_cpu():
    """A grouped tf.nn.convolution runs forward on CPU in 1-d and 2-d (equal to tconv.conv) but
    its gradient raises; the CPU Conv3D has no groups at all."""
    rng = np.random.default_rng(2)
    x = rng.integers(-4, 5, (1, 4, 6, 6)).astype(np.float64)
    w = rng.integers(-4, 5, (6, 2, 3, 3)).astype(np.float64)   # groups=2, C_out/groups=3
    xt = _last(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.nn.convolution(xt, _filters(w))
    np.testing.assert_array_equal(_first(y), tconv.conv(x, w, groups=2))
    with pytest.raises(tf.errors.InvalidArgumentError, match=CPU_GROUPS):
        tape.gradient(y, xt, tf.ones_like(y))
    with pytest.raises(tf.errors.InvalidArgumentError, match=CPU_GROUPS):
        tf.nn.conv2d_transpose(tf.ones((1, 4, 4, 6), tf.float64), _filters(w), [1, 6, 6, 4], 1,
                               "VALID")
    # the Eigen and the oneDNN Conv3D word it differently
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="Number of channels in filter|must have the same depth"):
        tf.nn.convolution(tf.ones((1, 4, 4, 4, 4)), tf.ones((2, 2, 2, 2, 6)))


def test_depthwise_backprop_input_ignores_dilation():
    """On CPU, DepthwiseConv2dNativeBackpropInput takes dilations=2 without complaint and
    computes the *undilated* gradient (cf. tensorflow#56498; the forward op now rejects them).
    Input 6, kernel 2, stride 3: 2 outputs with or without dilation, so the shape check passes."""
    rng = np.random.default_rng(56498)
    w = rng.integers(-4, 5, (2, 1, 2, 2)).astype(np.float64)  # C_in 1, multiplier 2
    g = rng.integers(-4, 5, (1, 2, 2, 2)).astype(np.float64)
    filters = tf.constant(w.reshape(1, 2, 2, 2).transpose(2, 3, 0, 1))
    got = _first(tf.nn.depthwise_conv2d_backprop_input(
        [1, 6, 6, 1], filters, _last(g), [1, 3, 3, 1], "VALID", dilations=[1, 2, 2, 1]))
    undilated = tconv.conv_transpose(g, w, stride=3, output_size=(6, 6))
    dilated = tconv.conv_transpose(g, w, stride=3, dilation=2, output_size=(6, 6))
    np.testing.assert_array_equal(got, undilated)
    assert not np.array_equal(got, dilated)
    with pytest.raises(tf.errors.UnimplementedError, match="does not support dilations"):
        tf.raw_ops.DepthwiseConv2dNative(input=tf.ones((1, 6, 6, 1), tf.float64), filter=filters,
                                         strides=[1, 3, 3, 1], padding="VALID",
                                         dilations=[1, 2, 2, 1])
    spec = ConvSpec.forward((1, 1, 6, 6), w.shape, stride=3, dilation=2)
    assert "ignores" in backend.input_grad_ways(spec, w, g)[DEPTHWISE].reason


def test_depthwise_unequal_strides_as_the_build_allows():
    """tensorflow#33005: the Eigen depthwise kernels take one stride for rows and columns only;
    the oneDNN kernels (float32 and bfloat16, when oneDNN is on) take two, and compute them
    right. The adapter runs the way and reports the build's refusal as the reason."""
    spec = ConvSpec.forward((1, 2, 7, 7), (2, 1, 3, 3), stride=(2, 1), groups=2)
    rng = np.random.default_rng(33005)
    w = rng.integers(-4, 5, spec.weight_shape)
    g = rng.integers(-4, 5, spec.output_shape)
    want = transpose(g, w, spec, "scatter")
    for dtype in ("float32", "float64"):
        try:
            tf.nn.depthwise_conv2d_backprop_input([1, 7, 7, 1], tf.ones((3, 3, 1, 1), dtype),
                                                  tf.ones((1, 3, 5, 1), dtype), [1, 2, 1, 1],
                                                  "VALID")
        except tf.errors.InvalidArgumentError as error:
            assert "equal length strides" in str(error)
            accepted = False
        else:
            accepted = True
        if dtype == "float32":
            assert accepted == tf_module.onednn_enabled()
        else:
            assert not accepted                      # float64: the Eigen kernel either way
        got = backend.input_grad_ways(spec, w.astype(dtype), g.astype(dtype))[DEPTHWISE]
        if accepted:
            np.testing.assert_array_equal(got, want)
        else:
            assert "tensorflow#33005" in got.reason and f"{dtype} kernel" in got.reason


def test_channels_first_as_the_build_allows():
    """The Eigen CPU input-gradient kernel is channels-last only ('only supports NHWC'); the
    oneDNN one (float32, when oneDNN is on) takes NCHW and computes it right. The adapter always
    transposes to NHWC."""
    rng = np.random.default_rng(5)
    y = rng.integers(-4, 5, (1, 3, 5, 5)).astype(np.float32)
    f = rng.integers(-4, 5, (3, 3, 2, 3)).astype(np.float32)      # [kh, kw, out, in]
    try:
        got = tf.nn.conv2d_transpose(y, f, [1, 2, 7, 7], 1, "VALID", data_format="NCHW").numpy()
    except tf.errors.InvalidArgumentError as error:
        assert "only supports NHWC" in str(error)
        accepted = False
    else:
        np.testing.assert_array_equal(got, tconv.conv_transpose(y, f.transpose(3, 2, 0, 1)))
        accepted = True
    assert accepted == tf_module.onednn_enabled()


def test_onednn_setting_follows_the_environment():
    """TF_ENABLE_ONEDNN_OPTS=0 turns the oneDNN kernels off and 1 on, and the verify table says
    which (TensorFlow.describe)."""
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    enabled = tf_module.onednn_enabled()
    if setting in ("0", "1"):
        assert enabled == (setting == "1")
    assert ("oneDNN kernels on" if enabled else "oneDNN kernels off") in backend.describe()


def test_the_other_onednn_setting():
    """Every test of this file again in a fresh process with TensorFlow's oneDNN kernels
    switched the other way: TensorFlow turns them on by itself on AVX-512 CPUs, so CI on either
    CPU kind proves both."""
    other = "0" if tf_module.onednn_enabled() else "1"
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=other)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
         "-k", "not test_the_other_onednn_setting"], env=env, capture_output=True, text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout


def test_transpose_filter_is_the_forward_filter():
    """conv2d_transpose's [h, w, output_channels, in_channels] is the forward conv2d's
    [h, w, in, out] array unchanged: with C_in != C_out and a non-square kernel, TF's
    <conv(x), y> equals <x, conv_transpose(y)> (the dot test, TF on both sides)."""
    rng = np.random.default_rng(4)
    x = rng.integers(-4, 5, (2, 7, 6, 3)).astype(np.float64)
    f = tf.constant(rng.integers(-4, 5, (3, 2, 3, 5)).astype(np.float64))
    y = tf.nn.conv2d(x, f, [2, 3], [[0, 0], [1, 0], [0, 2], [0, 0]])
    v = rng.integers(-4, 5, y.shape).astype(np.float64)
    xt = tf.nn.conv2d_transpose(v, f, x.shape, [2, 3], [[0, 0], [1, 0], [0, 2], [0, 0]])
    assert float(tf.reduce_sum(y * v)) == float(np.sum(x * xt.numpy()))


def test_verify_rows():
    """Through tconv.verify: every TF row is PASS or N/A with its reason."""
    from tconv.verify import verify

    spec = ConvSpec.forward((2, 4, 7, 6), (6, 2, 3, 2), stride=(2, 3), padding=((1, 0), (2, 1)),
                            dilation=(1, 2), groups=2)
    for s in (spec, ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)):
        _, w, g = arrays_for(s, 5, np.float32)
        report = verify(s, w, g, backends=("tensorflow",))
        rows = [row for row in report.rows if row.source == "tensorflow"]
        assert [row.name for row in rows] == backend.way_names(2) and report.passed
        assert {row.status for row in rows} == ({"N/A"} if s is spec else {"PASS"})


def test_depthwise_conv2d_stride_with_dilation_only_warns():
    """tensorflow#100237 / #57128: tf.nn.depthwise_conv2d documents that dilation > 1 needs
    stride 1, yet with stride 2 it only warns and returns numbers that are not the strided
    dilated convolution. (The adapter does not use this forward op.)"""
    rng = np.random.default_rng(100237)
    x = rng.integers(-3, 4, (1, 1, 9, 9)).astype(np.float64)
    w = rng.integers(-3, 4, (1, 1, 3, 3)).astype(np.float64)
    with pytest.warns(UserWarning, match="strides must be 1"):
        got = tf.nn.depthwise_conv2d(_last(x), tf.constant(w.transpose(2, 3, 0, 1)), [1, 2, 2, 1],
                                     "VALID", dilations=[2, 2])
    want = tconv.conv(x, w, stride=2, dilation=2)
    assert got.shape[1:3] == want.shape[2:] and not np.array_equal(_first(got), want)
