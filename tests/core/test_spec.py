"""ConvSpec: parameter forms, shape arithmetic against brute force, and every error."""
import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tconv
from tconv import ConvSpec, ConvSpecError
from tconv.strategies import conv_specs


def fwd(size, kernel, **kw):
    nd = len(size)
    k = kernel if isinstance(kernel, tuple) else (kernel,) * nd
    return ConvSpec.forward((1, 1) + tuple(size), (1, 1) + k, **kw)


def test_the_original_experiment():
    spec = fwd((4, 4), 3, stride=2, padding=1)
    assert spec.output_shape == (1, 1, 2, 2)
    assert spec.output_padding == (1, 1)           # the row/column the stride dropped
    assert spec.transpose_padding == ((1, 2), (1, 2))  # per dim: k-1-p low, k-1-p+op high
    assert spec.input_sizes() == (((3, 0), (4, 1)),) * 2


@pytest.mark.parametrize("padding, pairs", [
    (1, ((1, 1), (1, 1))),
    ((1, 2), ((1, 1), (2, 2))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))),
    ([[0, 1], 2], ((0, 1), (2, 2))),
    (np.int64(2), ((2, 2), (2, 2))),
    ("valid", ((0, 0), (0, 0))),
    ("VALID", ((0, 0), (0, 0))),
])
def test_padding_forms(padding, pairs):
    assert fwd((9, 9), 3, padding=padding).padding == pairs


@given(size=st.integers(1, 30), k=st.integers(1, 6), s=st.integers(1, 4), d=st.integers(1, 3))
def test_same_padding_gives_ceil_size_and_puts_the_odd_pixel_high(size, k, s, d):
    extent = d * (k - 1) + 1
    spec = fwd((size,), k, stride=s, dilation=d, padding="same")
    assert spec.output_size == (-(-size // s),)
    lo, hi = spec.padding[0]
    assert hi - lo in (0, 1)
    if s == 1:
        assert lo + hi == extent - 1


@given(spec=conv_specs(max_out=6))
def test_shape_formulas_against_brute_force(spec):
    """Every input size 1..60 whose forward size equals the spec's: exactly ``input_sizes()``,
    and each with the output_padding that restores it."""
    for dim in range(spec.ndim):
        k, s, d, p = (spec.kernel_size[dim], spec.stride[dim], spec.dilation[dim],
                      spec.padding[dim])
        out = spec.output_size[dim]
        # brute force: slide the dilated kernel over the padded input, count the placements
        brute = set()
        for n in range(1, 80):
            placements = [start for start in range(0, n + p[0] + p[1], s)
                          if start + d * (k - 1) < n + p[0] + p[1]]
            if len(placements) == out:
                brute.add(n)
        listed = spec.input_sizes()[dim]
        assert {n for n, _ in listed if n >= 1} == brute
        for n, op in listed:
            assert ConvSpec.transposed_size(out, k, s, p, d, op) == n


@given(spec=conv_specs())
def test_output_size_picks_output_padding(spec):
    assert spec.output_padding_for(spec.input_size) == spec.output_padding
    again = ConvSpec.transpose(spec.output_shape, spec.weight_shape, stride=spec.stride,
                               padding=spec.padding, dilation=spec.dilation, groups=spec.groups,
                               output_size=spec.input_shape)
    assert again == spec


def test_output_padding_range_is_stride_or_dilation():
    y, w = (1, 1, 3), (1, 1, 3)
    for s, d in itertools.product(range(1, 4), range(1, 4)):
        for op in range(5):
            if op < max(s, d):
                ConvSpec.transpose(y, w, stride=s, dilation=d, output_padding=op)
            else:
                with pytest.raises(ConvSpecError, match=r"output_padding=\d+ out of range"):
                    ConvSpec.transpose(y, w, stride=s, dilation=d, output_padding=op)


@given(size=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 4), d=st.integers(1, 3))
def test_transpose_same_gives_in_times_stride(size, k, s, d):
    """'same' promises in * stride cells even when the dilated kernel is shorter than the
    stride, and the forward 'same' convolution of that result has the input's size."""
    spec = ConvSpec.transpose((1, 1, size), (1, 1, k), stride=s, dilation=d, padding="same")
    assert spec.input_size == (size * s,)
    assert fwd((size * s,), k, stride=s, dilation=d, padding="same").output_size == (size,)


def test_transpose_same_is_the_forward_same_of_the_result():
    spec = ConvSpec.transpose((1, 1, 5, 4), (1, 1, 4, 3), stride=2, padding="same")
    assert spec.input_size == (10, 8)
    assert fwd((10, 8), (4, 3), stride=2, padding="same").output_size == (5, 4)
    spec = ConvSpec.transpose((1, 1, 5), (1, 1, 3), stride=2, padding="same", output_size=(9,))
    assert spec.input_size == (9,)


# -- every invalid parameter: ConvSpecError naming the parameter and the values ---------------

BAD = [
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 2, 3, 3), groups=3), r"groups=3 .*4"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 1, 3, 3), groups=4), r"groups=4 .*6"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), groups=0), r"groups must be >= 1, got 0"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), stride=(2, 0)), r"stride .*\(2, 0\)"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), stride=-1), r"stride .*-1"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), dilation=0), r"dilation .*0"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), padding=-1), r"padding must be >= 0"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), padding=((0, -2), 1)), r"padding .*-2"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), padding="full"), r"padding .*'full'"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), padding=(1, 2, 3)), r"padding .*3 values"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4, 3, 3), stride=1.5), r"stride must be an integer, got 1.5"),
    (dict(input_shape=(1, 4, 2, 8), weight_shape=(6, 4, 5, 3)), r"kernel size 5 .*2\+0\+0=2 in spatial dim 0"),
    (dict(input_shape=(1, 4, 4, 8), weight_shape=(6, 4, 3, 3), dilation=2), r"dilated extent 5"),
    (dict(input_shape=(1, 3, 8, 8), weight_shape=(6, 4, 3, 3)), r"weight.shape\[1\]=4 .*3/1 = 3"),
    (dict(input_shape=(1, 4, 8), weight_shape=(6, 4, 3, 3)), r"input must be .*2 spatial dims.*\(1, 4, 8\)"),
    (dict(input_shape=(1, 4, 8, 8), weight_shape=(6, 4)), r"weight must be .*\(6, 4\)"),
    (dict(input_shape=(1, 4, 0, 8), weight_shape=(6, 4, 1, 1)), r"input spatial size must be >= 1"),
]


@pytest.mark.parametrize("kwargs, message", BAD)
def test_invalid_forward_parameters(kwargs, message):
    shapes = (kwargs.pop("input_shape"), kwargs.pop("weight_shape"))
    with pytest.raises(ConvSpecError, match=message):
        ConvSpec.forward(*shapes, **kwargs)
    x, w = np.zeros(shapes[0]), np.zeros(shapes[1])
    with pytest.raises(ConvSpecError, match=message):
        tconv.conv(x, w, **kwargs)


BAD_TRANSPOSE = [
    (dict(stride=2, output_padding=2), r"output_padding=\(2, 2\) out of range.*< \(2, 2\)"),
    (dict(stride=2, output_padding=(1, -1)), r"output_padding must be >= 0.*\(1, -1\)"),
    (dict(stride=2, output_size=(12, 9)), r"output_size=\(12, 9\) is unreachable.*9\.\.10"),
    (dict(stride=2, output_size=(9, 10, 1)), r"output_size must have 2 spatial sizes"),
    (dict(stride=2, output_padding=1, output_size=(9, 9)), r"output_padding=\(1, 1\) contradicts output_size=\(9, 9\).*\(0, 0\)"),
    (dict(padding=4), r"padding=\(4, 4\) crops the whole output: spatial dim 0 would have size -2"),
    (dict(groups=2), r"groups=2 must divide the input channels 3"),
    (dict(method="fft"), r"method='fft' is not one of"),
]


@pytest.mark.parametrize("kwargs, message", BAD_TRANSPOSE)
def test_invalid_transpose_parameters(kwargs, message):
    y, w = np.zeros((1, 3, 4, 4)), np.zeros((3, 2, 3, 3))
    with pytest.raises(ConvSpecError, match=message):
        tconv.conv_transpose(y, w, **kwargs)


def test_invalid_arrays():
    with pytest.raises(ConvSpecError, match=r"weight.shape\[0\]=2 must equal the input channels 3"):
        tconv.conv_transpose(np.zeros((1, 3, 4)), np.zeros((2, 1, 3)))
    with pytest.raises(ConvSpecError, match="dtype must be a real .* complex128"):
        tconv.conv_transpose(np.zeros((1, 1, 4), complex), np.zeros((1, 1, 3)))
    with pytest.raises(ConvSpecError, match="dtype must be a real .* bool"):
        tconv.conv(np.zeros((1, 1, 4), bool), np.zeros((1, 1, 3)))
    with pytest.raises(ConvSpecError, match=r"grad_output shape \(1, 1, 3\) does not match .*\(1, 1, 2\)"):
        tconv.conv_input_grad((1, 1, 4), np.zeros((1, 1, 3)), np.zeros((1, 1, 3)))
    with pytest.raises(ConvSpecError, match=r"grad_output shape"):
        tconv.conv_weight_grad(np.zeros((1, 1, 4)), (1, 1, 3), np.zeros((1, 1, 3)))
    ragged = [[[1.0, 2.0], [3.0]]]
    with pytest.raises(ConvSpecError, match=r"^x is not an array: .*inhomogeneous"):
        tconv.conv(ragged, np.zeros((1, 1, 1)))
    with pytest.raises(ConvSpecError, match=r"^y is not an array"):
        tconv.conv_transpose(ragged, np.zeros((1, 1, 1)))
    with pytest.raises(ConvSpecError, match=r"^grad_output is not an array"):
        tconv.conv_input_grad((1, 1, 2), np.zeros((1, 1, 1)), ragged)
    with pytest.raises(ConvSpecError, match=r"^x is not an array"):
        tconv.conv_weight_grad(ragged, (1, 1, 1), np.zeros((1, 1, 2)))


def test_spec_error_is_a_value_error():
    assert issubclass(ConvSpecError, ValueError)


@given(spec=conv_specs())
def test_forward_with_explicit_output_padding_rebuilds_any_spec(spec):
    """Every transposed spec, output_padding >= stride included, is also a forward spec."""
    again = ConvSpec.forward(spec.input_shape, spec.weight_shape, stride=spec.stride,
                             padding=spec.padding, dilation=spec.dilation, groups=spec.groups,
                             output_padding=spec.output_padding)
    assert again == spec


def test_forward_rejects_an_output_padding_that_does_not_fit():
    with pytest.raises(ConvSpecError, match=r"output_padding=0 does not fit input size 4"):
        ConvSpec.forward((1, 1, 4), (1, 1, 3), stride=2, padding=0, output_padding=0)


def test_zero_d_arrays_and_tensors_are_scalars():
    """A 0-d array (or tensor) parameter means its value, as a NumPy scalar does."""
    y, w = np.ones((1, 1, 4)), np.ones((1, 1, 3))
    want = tconv.conv_transpose(y, w, stride=2, output_padding=1, padding=1)
    got = tconv.conv_transpose(y, w, stride=np.array(2), output_padding=np.array(1),
                               padding=np.array(1), groups=np.array(1))
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ConvSpecError, match=r"method=\['x'\] is not one of"):
        tconv.conv_transpose(y, w, method=["x"])
