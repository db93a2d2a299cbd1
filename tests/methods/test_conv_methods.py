"""The forward convolution and the weight gradient: every method against the naive loops,
against exact arithmetic, and the two naive loops against each other (adjoint identity)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tconv
from tconv import CONV_METHODS, exact
from tconv.methods import im2col, reference
from tconv.ops import convolve, weight_grad
from tconv.spec import ConvSpec, ConvSpecError
from tconv.strategies import arrays_for, conv_specs

from oracle import assert_exact

#: im2col block sizes that take every branch of its plan: one element (a slab per output
#: row), a few hundred bytes (slabs of several rows, or a few samples), and the default.
BLOCKS = [1, 512, im2col.BLOCK_BYTES]


@pytest.fixture(params=BLOCKS, ids=lambda b: f"block{b}")
def block_bytes(request, monkeypatch):
    monkeypatch.setattr(im2col, "BLOCK_BYTES", request.param)
    return request.param


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_every_method_equals_the_naive_loops_on_integers(block_bytes, spec, seed):
    """Integer data, every spec and every block size: bit for bit the reference's numbers."""
    x, w, g = arrays_for(spec, seed)
    want_y = reference.conv(x, w, spec)
    want_dw = reference.weight_grad(x, g, spec)
    for method in CONV_METHODS + ("auto",):
        y = convolve(x, w, spec, method)
        dw = weight_grad(x, g, spec, method)
        assert y.dtype == dw.dtype == np.int64
        np.testing.assert_array_equal(y, want_y, err_msg=f"{method}: {spec.describe()}")
        np.testing.assert_array_equal(dw, want_dw, err_msg=f"{method}: {spec.describe()}")


@settings(max_examples=150)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_naive_weight_grad_is_the_adjoint_of_the_naive_forward_in_w(spec, seed):
    """``<conv(x, w), g> == <w, weight_grad(x, g)>``: w -> conv(x, w) is linear, and the weight
    gradient is its adjoint. Exact on integers; ties the two naive loops to each other."""
    x, w, g = arrays_for(spec, seed)
    lhs = np.vdot(reference.conv(x, w, spec), g)
    rhs = np.vdot(w, reference.weight_grad(x, g, spec))
    assert lhs == rhs


@settings(max_examples=40)
@given(spec=conv_specs(max_out=3), seed=st.integers(0, 2**16))
def test_float64_within_the_rounding_bound_of_exact(spec, seed):
    """|computed - exact| <= gamma_n * (sum of the magnitudes of the n products) + u*|exact|,
    with n = C_in/g * prod(k) for the forward and N * prod(out) for the weight gradient."""
    x, w, g = arrays_for(spec, seed, np.float64)
    for method in CONV_METHODS:
        assert_exact("conv", x, w, spec, convolve(x, w, spec, method), label=method)
        assert_exact("weight_grad", x, g, spec, weight_grad(x, g, spec, method), label=method)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.uint16])
@pytest.mark.parametrize("method", CONV_METHODS)
def test_public_functions_keep_the_dtype_and_agree(method, dtype):
    spec = ConvSpec.forward((2, 4, 7, 6), (6, 2, 3, 2), stride=(2, 1), padding=((1, 0), (2, 1)),
                            dilation=(1, 2), groups=2)
    x, w, g = (a.astype(dtype) for a in arrays_for(spec, 11))
    kw = dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2, method=method)
    y = tconv.conv(x, w, **kw)
    dw = tconv.conv_weight_grad(x, w.shape, g, **kw)
    assert y.dtype == dw.dtype == np.dtype(dtype)
    if np.dtype(dtype).kind in "iu":  # exact modulo 2**bits: wrap the exact integers
        np.testing.assert_array_equal(y, exact.wrap(exact.conv(x, w, spec), dtype))
        np.testing.assert_array_equal(dw, exact.wrap(exact.weight_grad(x, g, spec), dtype))
    else:
        tol = dict(rtol=3e-3 if dtype == np.float16 else 1e-5, atol=1e-2)
        np.testing.assert_allclose(y, reference.conv(x.astype(float), w.astype(float), spec),
                                   **tol)
        np.testing.assert_allclose(dw, reference.weight_grad(x.astype(float), g.astype(float),
                                                             spec), **tol)


@pytest.mark.parametrize("method", CONV_METHODS)
def test_four_spatial_dims(method):
    spec = ConvSpec.forward((2, 2, 4, 3, 5, 3), (4, 1, 2, 1, 3, 2), stride=(2, 1, 2, 1),
                            padding=1, groups=2)
    x, w, g = arrays_for(spec, 5)
    np.testing.assert_array_equal(convolve(x, w, spec, method), reference.conv(x, w, spec))
    np.testing.assert_array_equal(weight_grad(x, g, spec, method),
                                  reference.weight_grad(x, g, spec))


def test_plan_covers_every_sample_and_row_once(monkeypatch):
    spec = ConvSpec.forward((5, 3, 9, 4), (2, 3, 3, 2), stride=2, padding=1)
    assert spec.output_size == (5, 3)
    row = 8 * 3 * (3 * 6 + 2)     # float64, out[1:] * (columns C_in * K + result C_out)
    sample = 5 * row + 8 * 3 * 9 * 4                              # + the sample's input
    for budget in (1, row, 3 * row, sample, 3 * sample + 1, 1 << 30):
        monkeypatch.setattr(im2col, "BLOCK_BYTES", budget)
        seen = np.zeros((5, 5), int)
        for samples, rows in im2col.plan(spec, 8):
            seen[samples, rows] += 1
            nb, nr = samples.stop - samples.start, rows.stop - rows.start
            cost = nb * sample if nr == 5 and budget >= sample else nr * row
            assert cost <= max(budget, row)   # a block exceeds the budget only by one row
        assert np.all(seen == 1), budget


@pytest.mark.parametrize("method", CONV_METHODS)
def test_naive_loops_and_methods_take_an_empty_batch(method):
    spec = ConvSpec.forward((0, 4, 5, 4), (6, 2, 3, 2), stride=2, groups=2)
    x, w, g = np.zeros(spec.input_shape), np.ones(spec.weight_shape), np.zeros(spec.output_shape)
    for y in (reference.conv(x, w, spec), exact.conv(x, w, spec), convolve(x, w, spec, method)):
        assert y.shape == (0, 6, 2, 2)
    for dw in (reference.weight_grad(x, g, spec), exact.weight_grad(x, g, spec),
               weight_grad(x, g, spec, method)):
        np.testing.assert_array_equal(dw, np.zeros(spec.weight_shape))


def test_unknown_method_is_a_spec_error():
    with pytest.raises(ConvSpecError, match=r"method='fast'.*'direct', 'im2col'"):
        tconv.conv(np.ones((1, 1, 3)), np.ones((1, 1, 2)), method="fast")
    with pytest.raises(ConvSpecError, match=r"method=3"):
        tconv.conv_weight_grad(np.ones((1, 1, 3)), (1, 1, 2), np.ones((1, 1, 2)), method=3)
