"""The JAX backend: every way lax offers against tconv's scatter reference, its NotExpressible
reasons, and JAX's transposed-convolution conventions shown with real numbers."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

jax = pytest.importorskip("jax")
lax = jax.lax

import tconv  # noqa: E402
from tconv import exact  # noqa: E402
from tconv import frameworks as registry  # noqa: E402
from tconv.frameworks import KnownDifference, NotExpressible  # noqa: E402
from tconv.frameworks import jax as jax_module  # noqa: E402
from tconv.ops import transpose  # noqa: E402
from tconv.spec import ConvSpec  # noqa: E402
from tconv.strategies import arrays_for, conv_specs  # noqa: E402
from tconv.verify import compare, error_bound, verify  # noqa: E402

jax_backend = registry.get("jax")

WAYS = jax_backend.way_names(2)
CONV_TRANSPOSE_WAYS = [w for w in WAYS if w.startswith("lax.conv_transpose")]
AUTODIFF_WAYS = [w for w in WAYS if w.startswith("jax.")]

# Hand-picked specs, so each run covers them whatever hypothesis draws.
SPECS = {
    # groups 2 with C_out/groups = 2 and C_in/groups = 3, asymmetric padding, dilation 2
    "groups": ConvSpec.transpose((2, 4, 3, 3), (4, 3, 3, 2), stride=2,
                                 padding=((1, 0), (0, 2)), output_padding=1, dilation=(2, 1),
                                 groups=2),
    # dilation 2 with stride 3 and output_padding 2
    "dilated_strided": ConvSpec.transpose((1, 2, 4), (2, 3, 3), stride=3, dilation=2,
                                          padding=((1, 2),), output_padding=2),
    # output_padding 2 >= stride 1 (allowed because < dilation 3): the forward output of x is
    # longer than g
    "op_ge_stride": ConvSpec.transpose((1, 1, 3), (1, 1, 2), stride=1, dilation=3,
                                       output_padding=2),
    # stride larger than the kernel in every dim, 3-d
    "stride_gt_kernel_3d": ConvSpec.transpose((1, 2, 2, 3, 2), (2, 2, 2, 1, 1), stride=(4, 3, 2),
                                              padding=((0, 1), (1, 0), (0, 0)),
                                              output_padding=(3, 1, 1)),
    # 3-d, 3 groups
    "groups_3d": ConvSpec.transpose((1, 6, 2, 2, 3), (6, 1, 2, 3, 1), stride=(2, 1, 2),
                                    padding=1, output_padding=(1, 0, 1), groups=3),
    # padding larger than the kernel extent: the zero-insertion form crops (negative padding)
    "padding_gt_extent": ConvSpec.transpose((1, 1, 4), (1, 1, 1), stride=2, padding=((3, 2),),
                                            output_padding=1),
    # 4 spatial dims: lax is N-d
    "4d": ConvSpec.transpose((1, 2, 2, 2, 2, 2), (2, 1, 2, 1, 2, 1), stride=(2, 1, 1, 2),
                             padding=((1, 0), (0, 0), (0, 1), (0, 0)), dilation=(1, 1, 2, 1),
                             output_padding=(1, 0, 0, 0)),
    # what lax.conv_transpose's 'SAME' and 'VALID' mean, expressed by the string way
    "same": ConvSpec.transpose((1, 2, 3, 2), (2, 1, 4, 2), stride=(2, 3), padding="same",
                               dilation=(1, 2)),
    # kernel shorter than the stride: 'SAME' and 'VALID' both mean output_padding stride - K
    "same_kernel_lt_stride": ConvSpec.transpose((1, 1, 2), (1, 1, 2), stride=3, output_padding=1),
    "valid": ConvSpec.transpose((1, 1, 3, 2), (1, 2, 2, 5), stride=(3, 2), padding="valid",
                                output_padding=(1, 0)),
}


def _expected_reason(spec, way, dtype):
    """The documented reason key a way must give for this spec and dtype, or None."""
    if dtype.name not in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                          "uint8", "uint16", "uint32", "uint64"):
        return "dtype"
    if way in AUTODIFF_WAYS and dtype.kind in "iu":
        return "autodiff"
    if way in CONV_TRANSPOSE_WAYS and spec.groups > 1:
        return "groups"
    if way == "lax.conv_transpose('SAME'/'VALID')":
        per_dim = list(zip(spec.padding, spec.output_padding))
        extents = [d * (k - 1) + 1 for k, d in zip(spec.kernel_size, spec.dilation)]
        same = [((max(e - s, 0) // 2, max(e - s, 0) - max(e - s, 0) // 2), max(s - e, 0))
                for s, e in zip(spec.stride, extents)]
        valid = [((0, 0), max(s - e, 0)) for s, e in zip(spec.stride, extents)]
        if per_dim not in (same, valid):
            return "string"
    return None


def _check_ways(spec, w, g):
    """Every way equals the scatter reference exactly (integer-valued data)."""
    want = transpose(g, w, spec, "scatter")
    ways = jax_backend.input_grad_ways(spec, w, g)
    assert list(ways) == WAYS
    for way, got in ways.items():
        key = _expected_reason(spec, way, np.result_type(g, w))
        if key is not None:
            assert isinstance(got, NotExpressible), (way, spec.describe())
            assert got.reason.startswith(jax_module.REASONS[key]), (way, got.reason)
            continue
        assert not isinstance(got, NotExpressible), (way, got, spec.describe())
        assert got.dtype == want.dtype, way
        np.testing.assert_array_equal(got, want, err_msg=f"{way}: {spec.describe()}")


@pytest.mark.parametrize("name", SPECS)
def test_hand_picked_specs_equal_scatter(name):
    """groups, dilation with stride and output_padding, output_padding >= stride, stride >
    kernel, 3-d, 4-d, padding beyond the kernel, 'SAME'/'VALID': every way that can express the
    spec gives the scatter result exactly (float64, integer values)."""
    spec = SPECS[name]
    _, w, g = arrays_for(spec, 7)
    _check_ways(spec, w.astype(np.float64), g.astype(np.float64))


@settings(max_examples=45)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_every_way_equals_scatter(spec, seed):
    """Random specs (1-3 dims, groups, dilation, asymmetric padding, output_padding): each way
    is exactly the scatter reference in float64 on integer-valued data, and each
    NotExpressible is exactly the documented one for the spec."""
    _, w, g = arrays_for(spec, seed)
    _check_ways(spec, w.astype(np.float64), g.astype(np.float64))


@settings(max_examples=12)
@given(spec=conv_specs(max_channels_per_group=3),
       dtype=st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint64]),
       seed=st.integers(0, 2**16))
def test_integer_ways_exact_with_wraparound(spec, dtype, seed):
    """lax convolves integers exactly on CPU, wrapping modulo 2**bits as NumPy does; values
    over the whole range of the dtype overflow, and the result is still bit-exact. jax.vjp and
    jax.linear_transpose cannot differentiate integers (NotExpressible)."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    w = rng.integers(info.min, info.max, spec.weight_shape, dtype=dtype, endpoint=True)
    g = rng.integers(info.min, info.max, spec.output_shape, dtype=dtype, endpoint=True)
    truth = exact.wrap(exact.conv_transpose(g, w, spec), dtype)
    ways = jax_backend.input_grad_ways(spec, w, g)
    for way, got in ways.items():
        key = _expected_reason(spec, way, np.dtype(dtype))
        if key is not None:
            assert got.reason.startswith(jax_module.REASONS[key]), (way, got)
            continue
        assert got.dtype == dtype, way
        np.testing.assert_array_equal(got, truth, err_msg=f"{way}: {spec.describe()}")


@settings(max_examples=14)
@given(spec=conv_specs(max_channels_per_group=3, max_kernel=5),
       dtype=st.sampled_from([np.float16, np.float32]), seed=st.integers(0, 2**16))
def test_float16_float32_within_error_bound(spec, dtype, seed):
    """In float16 and float32 every way stays within tconv's rounding bound of the exact
    result, and keeps the dtype."""
    _, w, g = arrays_for(spec, seed, dtype)
    truth = exact.conv_transpose(g, w, spec)
    bound = error_bound(g, w, spec, truth)
    for way, got in jax_backend.input_grad_ways(spec, w, g).items():
        key = _expected_reason(spec, way, np.dtype(dtype))
        if key is not None:
            assert got.reason.startswith(jax_module.REASONS[key]), (way, got)
            continue
        known = isinstance(got, KnownDifference)   # openxla/xla#48713, tested below
        got = got.result if known else got
        assert got.dtype == dtype, way
        row = compare(way, "jax", got, truth, bound)
        assert row.status == "PASS" or known, (row, spec.describe())


def test_float64_uses_x64_without_changing_global_config():
    """float64 and int64 run in x64 mode (values beyond float32 and int32 survive), inside a
    context manager: the global jax_enable_x64 is the same afterwards."""
    before = jax.config.jax_enable_x64
    spec = ConvSpec.transpose((1, 1, 2), (1, 1, 2), stride=2)
    g = np.array([[[2.0**40 + 1, 3.0]]])           # 2**40 + 1 is not a float32
    w = np.array([[[1.0, 2.0**-30]]])
    ways = jax_backend.input_grad_ways(spec, w, g)
    # x = [g0*w0, g0*w1, g1*w0, g1*w1]
    want = np.array([[[2.0**40 + 1, 2.0**10 + 2.0**-30, 3.0, 3 * 2.0**-30]]])
    for way, got in ways.items():
        if not isinstance(got, NotExpressible):
            assert got.dtype == np.float64
            np.testing.assert_array_equal(got, want, err_msg=way)
    gi, wi = np.array([[[2**40, 5]]]), np.array([[[3, -1]]])
    got = jax_backend.input_grad_ways(spec, wi, gi)["lax.conv_general_dilated(lhs_dilation)"]
    assert got.dtype == np.int64
    assert got.tolist() == [[[3 * 2**40, -2**40, 15, -5]]]
    assert jax.config.jax_enable_x64 == before


def test_unsupported_dtype_is_not_expressible():
    """JAX has no long double: every way says so instead of raising."""
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is float64 on this platform")
    spec = SPECS["dilated_strided"]
    _, w, g = arrays_for(spec, 0, np.longdouble)
    for way, got in jax_backend.input_grad_ways(spec, w, g).items():
        assert isinstance(got, NotExpressible), way
        assert got.reason.startswith(jax_module.REASONS["dtype"])


def test_conv_transpose_without_transpose_kernel_does_not_flip_or_swap():
    """jax#14337: lax.conv_transpose's default (transpose_kernel=False) slides the kernel as
    given; the transposed convolution (PyTorch, tconv, TF's gradient) uses it flipped, with
    input and output channels swapped.

    Flip: y = [1, 0, 0], w = [1, 2, 3], stride 1: the transpose puts w at y's one nonzero
    cell, x = [1, 2, 3, 0, 0]; lax without transpose_kernel gives [3, 2, 1, 0, 0].
    Swap: 2 channels, a 1x1 kernel w[o, i] = [[1, 2], [3, 4]], g = [1, 0]: dL/dx[i] =
    sum_o w[o, i] g[o] = [1, 2] (row 0 of w); without the swap lax reads w[o, i] as (I, O) in
    the forward labelling and gives column 0, [1, 3]."""
    y, w = np.array([[[1.0, 0, 0]]]), np.array([[[1.0, 2, 3]]])
    dn = lax.ConvDimensionNumbers((0, 1, 2), (1, 0, 2), (0, 1, 2))   # w as (I, O, k)
    assert tconv.conv_transpose(y, w).tolist() == [[[1, 2, 3, 0, 0]]]
    plain = lax.conv_transpose(y, w, (1,), [(2, 2)], dimension_numbers=dn)
    assert np.asarray(plain).tolist() == [[[3, 2, 1, 0, 0]]]
    fwd = lax.ConvDimensionNumbers((0, 1, 2), (0, 1, 2), (0, 1, 2))  # w as the forward (O, I, k)
    flipped = lax.conv_transpose(y, w, (1,), [(2, 2)], dimension_numbers=fwd,
                                 transpose_kernel=True)
    assert np.asarray(flipped).tolist() == [[[1, 2, 3, 0, 0]]]

    g, w2 = np.array([[[1.0], [0.0]]]), np.array([[[1.0], [2.0]], [[3.0], [4.0]]])
    assert tconv.conv_transpose(g, w2).tolist() == [[[1], [2]]]
    unswapped = lax.conv_transpose(g, w2, (1,), [(0, 0)], dimension_numbers=fwd)
    assert np.asarray(unswapped).tolist() == [[[1], [3]]]
    swapped = lax.conv_transpose(g, w2, (1,), [(0, 0)], dimension_numbers=fwd,
                                 transpose_kernel=True)
    assert np.asarray(swapped).tolist() == [[[1], [2]]]


def test_conv_transpose_explicit_padding_is_the_transposed_padding():
    """jax#32267: explicit (low, high) pairs in lax.conv_transpose (default
    use_consistent_padding=False) pad the zero-inserted input, so lax's p is PyTorch's
    dilation*(k-1) - p, while 'SAME'/'VALID' and use_consistent_padding=True (jax#32268) mean
    the forward padding.

    y = [1, 10], w = [1, 2, 3], stride 2: the full transpose is x[2i + j] += y[i] w[j] =
    [1, 2, 3, 0, 0] + [0, 0, 10, 20, 30] = [1, 2, 13, 20, 30] (PyTorch padding 0). lax's
    padding (0, 0) keeps only the middle cell, 13: PyTorch's padding 2."""
    y, w = np.array([[[1.0, 10.0]]]), np.array([[[1.0, 2.0, 3.0]]])
    fwd = lax.ConvDimensionNumbers((0, 1, 2), (0, 1, 2), (0, 1, 2))

    def lax_ct(padding, **kwargs):
        return np.asarray(lax.conv_transpose(y, w, (2,), padding, dimension_numbers=fwd,
                                             transpose_kernel=True, **kwargs)).tolist()

    assert tconv.conv_transpose(y, w, stride=2).tolist() == [[[1, 2, 13, 20, 30]]]
    assert tconv.conv_transpose(y, w, stride=2, padding=2).tolist() == [[[13]]]
    assert lax_ct([(0, 0)]) == [[[13]]]
    assert lax_ct([(2, 2)]) == [[[1, 2, 13, 20, 30]]]
    assert lax_ct([(1, 0)]) == tconv.conv_transpose(y, w, stride=2, padding=((1, 2),)).tolist()
    assert lax_ct([(0, 0)], use_consistent_padding=True) == [[[1, 2, 13, 20, 30]]]
    # use_consistent_padding has no output_padding: a negative forward pad on the high side
    assert (lax_ct([(1, 0)], use_consistent_padding=True)
            == tconv.conv_transpose(y, w, stride=2, padding=1, output_padding=1).tolist()
            == [[[2, 13, 20, 30]]])


def test_conv_transpose_same_and_valid_padding_strings():
    """lax.conv_transpose's 'SAME' is tconv's transposed padding='same' (size in*stride, odd
    cell of forward padding on the high side). Its 'VALID' is no forward padding but size
    in*stride + max(K - stride, 0): for a kernel shorter than the stride that is
    output_padding stride - K, one more cell than PyTorch's padding=0 / tconv's 'valid'.

    y = [1, 10], w = [1, 2], stride 3: x[3i + j] += y[i] w[j] = [1, 2, 0, 10, 20] (5 cells);
    lax 'VALID' gives 6 cells, [1, 2, 0, 10, 20, 0]."""
    y, w = np.array([[[1.0, 10.0]]]), np.array([[[1.0, 2.0]]])
    fwd = lax.ConvDimensionNumbers((0, 1, 2), (0, 1, 2), (0, 1, 2))

    def lax_ct(padding, w=w):
        return np.asarray(lax.conv_transpose(y, w, (3,), padding, dimension_numbers=fwd,
                                             transpose_kernel=True)).tolist()

    assert tconv.conv_transpose(y, w, stride=3, padding="valid").tolist() == [[[1, 2, 0, 10, 20]]]
    assert lax_ct("VALID") == [[[1, 2, 0, 10, 20, 0]]]
    assert lax_ct("VALID") == tconv.conv_transpose(y, w, stride=3, output_padding=1).tolist()
    # a 5-tap kernel, longer than the stride: 'SAME' crops (5 - 3) = 2, one cell each side
    w5 = np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    same = tconv.conv_transpose(y, w5, stride=3, padding="same")
    # full: [1, 2, 3, 4+10, 5+20, 30, 40, 50] -> crop 1 low, 1 high
    assert same.tolist() == [[[2, 3, 14, 25, 30, 40]]]
    assert lax_ct("SAME", w5) == same.tolist()
    # through the backend: 'same' and 'valid' specs are expressed, padding 2 is neither
    for spec in (SPECS["same"], SPECS["valid"]):
        _, wi, gi = arrays_for(spec, 3)
        got = jax_backend.input_grad_ways(spec, wi, gi)["lax.conv_transpose('SAME'/'VALID')"]
        np.testing.assert_array_equal(got, transpose(gi, wi, spec, "scatter"))
    other = ConvSpec.transpose((1, 1, 2), (1, 1, 5), stride=3, padding=2)
    reason = jax_backend.input_grad_ways(other, np.ones((1, 1, 5)), np.ones((1, 1, 2)))[
        "lax.conv_transpose('SAME'/'VALID')"].reason
    assert reason.startswith(jax_module.REASONS["string"])
    assert "'SAME' means padding ((1, 1),), output_padding (0,)" in reason


def test_groups_not_expressible_in_conv_transpose():
    """lax.conv_transpose has no feature_group_count: with groups > 1 its ways give the
    documented reason, while the other ways (feature_group_count in conv_general_dilated)
    compute the grouped gradient."""
    spec = SPECS["groups"]
    _, w, g = arrays_for(spec, 1)
    ways = jax_backend.input_grad_ways(spec, w, g)
    want = transpose(g, w, spec, "scatter")
    for way in CONV_TRANSPOSE_WAYS:
        assert ways[way].reason.startswith(jax_module.REASONS["groups"]), way
        assert "groups=2" in ways[way].reason
    np.testing.assert_array_equal(ways["lax.conv_general_dilated(lhs_dilation)"], want)


def test_verify_with_jax_registered():
    """Through verify, the jax rows are PASS or N/A, never FAIL."""
    spec = SPECS["dilated_strided"]
    _, w, g = arrays_for(spec, 5, np.float32)
    report = verify(spec, w, g, methods=("scatter",), backends=("jax",))
    rows = {row.name: row.status for row in report.rows if row.source == "jax"}
    assert list(rows) == WAYS
    assert set(rows.values()) <= {"PASS", "N/A"} and report.passed, rows
    assert rows["lax.conv_transpose('SAME'/'VALID')"] == "N/A"


def test_module_imports_without_jax():
    """The adapter imports jax lazily: with jax unimportable the module loads and reports
    itself unavailable."""
    code = ("import sys; sys.modules['jax'] = None\n"
            "from tconv.frameworks import available, get\n"
            "b = get('jax')\n"
            "assert not available('jax') and b.name == 'jax' and len(b.way_names(2)) == 6\n"
            "assert 'jax' not in [m for m in sys.modules if sys.modules[m] is not None]")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("size,kernel,stride,dilation",
                         [(7, 3, 2, 1), (6, 4, 3, 1), (5, 2, 3, 2), (8, 1, 3, 1), (4, 3, 1, 2)])
def test_forward_same_padding_matches_tconv(size, kernel, stride, dilation):
    """lax's forward 'SAME' (ceil(in/stride) cells, the odd padding cell on the high side) is
    tconv's padding='same', including stride > 1 and dilation."""
    rng = np.random.default_rng(size * kernel)
    x = rng.integers(-5, 6, (1, 2, size, size + 1)).astype(np.float64)
    w = rng.integers(-5, 6, (3, 2, kernel, 2)).astype(np.float64)
    numbers = lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))
    with jax.enable_x64(True):
        got = lax.conv_general_dilated(x, w, (stride, 1), "SAME", rhs_dilation=(dilation, 1),
                                       dimension_numbers=numbers)
    want = tconv.conv(x, w, stride=(stride, 1), padding="same", dilation=(dilation, 1))
    assert want.shape[2] == -(-size // stride)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_xla_negative_low_padding_is_a_known_difference():
    """openxla/xla#48713: XLA:CPU float convolutions with padding (-1, 1) read out of bounds.
    The sweep found it (a 2-d spec whose forward padding 2 exceeds the kernel extent 2); the
    adapter reports such specs as KNOWN, and the bug is shown here with lax directly."""
    from jax import lax

    g = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    k = np.ones((1, 1, 3, 3), np.float32)
    dn = lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))
    got = np.asarray(lax.conv_general_dilated(g, k, (1, 1), [(-1, 1), (-1, 1)],
                                              dimension_numbers=dn))[0, 0]
    padded = np.zeros((4, 4))
    padded[:3, :3] = g[0, 0, 1:, 1:]                       # crop one low, pad one high
    want = np.array([[padded[i:i + 3, j:j + 3].sum() for j in range(2)] for i in range(2)])
    wrong = not np.array_equal(got, want)
    if jax.__version__ == "0.10.2":                       # the pinned version has the bug
        assert wrong
    spec = tconv.ConvSpec.forward((1, 2, 2, 1), (4, 1, 2, 2), padding=((2, 0), (2, 0)),
                                  groups=2)
    reason = jax_module.xla_negative_padding_bug(spec, np.float32)
    assert "openxla/xla#48713" in reason and "(-1, 1)" in reason
    assert jax_module.xla_negative_padding_bug(spec, np.int32) is None
    assert jax_module.xla_negative_padding_bug(spec, np.float64) is None
    _, w, y = arrays_for(spec, 0, np.float32)
    ways = jax_backend.input_grad_ways(spec, w, y)
    assert all(isinstance(r, (KnownDifference, NotExpressible)) for r in ways.values())
