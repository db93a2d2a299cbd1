"""Every real NumPy dtype: kept in the result; integers exact (wrapping like NumPy); floats
within the rounding bound of exact arithmetic."""
import numpy as np
import pytest

import tconv
from tconv import exact
from tconv.ops import transpose
from tconv.spec import ConvSpec
from tconv.verify import error_bound

SPEC = ConvSpec.forward((2, 4, 7, 6), (6, 2, 3, 2), stride=(2, 3), padding=((1, 0), (2, 1)),
                        dilation=(1, 2), groups=2)
INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOATS = [np.float16, np.float32, np.float64, np.longdouble]


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("method", tconv.METHODS)
def test_integers_exact_with_wraparound(dtype, method):
    """Large values overflow narrow types: the result is the exact sum modulo 2**bits, as a
    NumPy loop in that dtype would wrap."""
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    y = rng.integers(info.min, info.max, SPEC.output_shape, dtype=dtype, endpoint=True)
    w = rng.integers(info.min, info.max, SPEC.weight_shape, dtype=dtype, endpoint=True)
    # independent: Python-integer exact result, reduced modulo 2**bits into the dtype's range
    truth = exact.conv_transpose(y, w, SPEC)
    bits = 8 * np.dtype(dtype).itemsize
    wrapped = np.vectorize(lambda v: v % (1 << bits), otypes=[object])(truth)
    if info.min < 0:
        wrapped = np.vectorize(lambda v: v - (1 << bits) if v > info.max else v,
                               otypes=[object])(wrapped)
    assert exact.wrap(truth, dtype).tolist() == wrapped.tolist()
    got = transpose(y, w, SPEC, method)
    assert got.dtype == dtype
    assert [int(v) for v in got.ravel()] == list(wrapped.ravel())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("method", tconv.METHODS)
def test_floats_keep_dtype_and_stay_within_bound(dtype, method):
    rng = np.random.default_rng(1)
    y = rng.standard_normal(SPEC.output_shape).astype(dtype)
    w = rng.standard_normal(SPEC.weight_shape).astype(dtype)
    got = transpose(y, w, SPEC, method)
    assert got.dtype == dtype
    truth = exact.conv_transpose(y, w, SPEC)
    bound = error_bound(y, w, SPEC, truth)
    assert np.all(np.abs(got.astype(np.float64) - truth) <= bound)


def test_mixed_dtypes_promote_like_numpy():
    y = np.ones(SPEC.output_shape, np.int16)
    w = np.ones(SPEC.weight_shape, np.float32)
    assert transpose(y, w, SPEC).dtype == np.float32
    assert tconv.conv(np.ones(SPEC.input_shape, np.uint8), w.astype(np.int8), stride=(2, 3),
                      padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2).dtype == np.int16


def test_error_bound_catches_a_one_ulp_shift():
    """The bound is tight enough that a float32 result off by several units in the last place
    fails: it is not a blanket tolerance."""
    rng = np.random.default_rng(2)
    y = rng.standard_normal(SPEC.output_shape).astype(np.float32)
    w = rng.standard_normal(SPEC.weight_shape).astype(np.float32)
    truth = exact.conv_transpose(y, w, SPEC)
    bound = error_bound(y, w, SPEC, truth)
    wrong = truth * (1 + 2.0**-12)
    assert not np.all(np.abs(wrong - truth) <= bound)


def test_longdouble_results_pass_verify():
    """The exact reference is rounded to float64: the bound covers that rounding, so correct
    longdouble results are not reported as failures."""
    from tconv.verify import verify
    rng = np.random.default_rng(0)
    spec = ConvSpec.forward((1, 2, 9, 9), (2, 2, 3, 3), stride=2, padding=1)
    for _ in range(20):
        w = rng.standard_normal(spec.weight_shape).astype(np.longdouble)
        g = rng.standard_normal(spec.output_shape).astype(np.longdouble)
        assert verify(spec, w, g).passed
