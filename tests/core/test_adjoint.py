"""The dot-product test: <conv(x, w), y> == <x, conv_transpose(y, w)> for every method."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv._arrays import flip_spatial
from tconv.ops import transpose
from tconv.spec import ConvSpec
from tconv.strategies import conv_specs


@settings(max_examples=150)
@given(spec=conv_specs(), seed=st.integers(0, 2**16),
       method=st.sampled_from(tconv.METHODS))
def test_every_method_is_the_exact_adjoint_of_conv(spec, seed, method):
    result = tconv.dot_test(spec, method=method, seed=seed)
    assert result.tolerance == 0 and result.lhs == result.rhs


@settings(max_examples=40)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_float_dot_test_within_tolerance(spec, seed):
    result = tconv.dot_test(spec, dtype=np.float64, seed=seed)
    assert result.passed
    # the tolerance scales with the sum of |products|, which cancellation can make much larger
    # than |lhs|; it must still be tiny next to any real error (see the wrong-adjoint test)
    assert result.tolerance < 1e-6 * max(1.0, abs(result.lhs))


@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_dot_test_rejects_a_wrong_adjoint(dtype):
    """An adjoint that forgets to flip the kernel fails the test, in integers and in floats."""
    spec = ConvSpec.forward((2, 3, 7, 6), (4, 3, 3, 2), stride=2, padding=1)
    wrong = lambda y, w, s: transpose(y, flip_spatial(w), s)  # noqa: E731
    result = tconv.dot_test(spec, adjoint_fn=wrong, dtype=dtype)
    assert not result.passed
    assert abs(result.lhs - result.rhs) > result.tolerance
