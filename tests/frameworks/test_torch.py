"""tconv against PyTorch: autograd, torch.nn.grad and F.conv_transposeNd, in float64."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv.ops import transpose
from tconv.strategies import arrays_for, conv_specs

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


@settings(max_examples=120)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_every_method_equals_torch_autograd(spec, seed):
    """dL/dx by autograd through F.pad + convNd equals every method (float64, integer-valued
    data, so both sides are exact and must be equal)."""
    _, w, g = arrays_for(spec, seed)
    x = torch.zeros(spec.input_shape, dtype=torch.float64, requires_grad=True)
    pads = [p for pair in reversed(spec.padding) for p in pair]
    conv = getattr(F, f"conv{spec.ndim}d")
    out = conv(F.pad(x, pads), _t(w), stride=spec.stride, dilation=spec.dilation,
               groups=spec.groups)
    out = out[(slice(None),) * 2 + tuple(slice(0, m) for m in spec.output_size)]
    (expected,) = torch.autograd.grad(out, x, _t(g))
    for method in tconv.METHODS:
        np.testing.assert_array_equal(transpose(g.astype(np.float64), w.astype(np.float64), spec,
                                                method), expected.numpy(), err_msg=method)


@settings(max_examples=120)
@given(spec=conv_specs(symmetric=True), seed=st.integers(0, 2**16))
def test_conv_transpose_equals_F_conv_transpose(spec, seed):
    """The public conv_transpose equals F.conv_transposeNd with the same stride, padding,
    output_padding, dilation and groups, with output_size instead, and nn.ConvTransposeNd."""
    _, w, y = arrays_for(spec, seed, np.float64)
    kwargs = dict(stride=spec.stride, padding=spec.symmetric_padding, groups=spec.groups,
                  dilation=spec.dilation)
    nd = spec.ndim
    expected = getattr(F, f"conv_transpose{nd}d")(_t(y), _t(w), output_padding=spec.output_padding,
                                                 **kwargs).numpy()
    for method in tconv.METHODS:
        got = tconv.conv_transpose(y, w, output_padding=spec.output_padding, method=method,
                                   **kwargs)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=method)
    got = tconv.conv_transpose(y, w, output_size=spec.input_size, **kwargs)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    if any(op >= s for op, s in zip(spec.output_padding, spec.stride)):
        return  # nn.ConvTranspose's output_size stops at stride - 1: see the test below
    module = getattr(torch.nn, f"ConvTranspose{nd}d")(
        spec.out_channels, spec.in_channels, spec.kernel_size, bias=False, **kwargs).double()
    with torch.no_grad():
        module.weight.copy_(_t(w))
        via_module = module(_t(y), output_size=list(spec.input_size)).numpy()
    np.testing.assert_allclose(via_module, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=100)
@given(spec=conv_specs(output_padding=False, symmetric=True), seed=st.integers(0, 2**16))
def test_gradients_equal_torch_nn_grad(spec, seed):
    """conv_input_grad / conv_weight_grad equal torch.nn.grad.convNd_input / _weight."""
    x, w, _ = arrays_for(spec, seed, np.float64)
    # the forward spec of x: output_padding is the forward floor's rest, as torch derives it
    kwargs = dict(stride=spec.stride, padding=spec.symmetric_padding, dilation=spec.dilation,
                  groups=spec.groups)
    g = np.random.default_rng(seed).standard_normal(tconv.conv(x, w, **kwargs).shape)
    nd = spec.ndim
    want_x = getattr(torch.nn.grad, f"conv{nd}d_input")(x.shape, _t(w), _t(g), **kwargs)
    want_w = getattr(torch.nn.grad, f"conv{nd}d_weight")(_t(x), w.shape, _t(g), **kwargs)
    for method in tconv.METHODS:
        np.testing.assert_allclose(tconv.conv_input_grad(x.shape, w, g, method=method, **kwargs),
                                   want_x.numpy(), rtol=1e-11, atol=1e-11, err_msg=method)
    np.testing.assert_allclose(tconv.conv_weight_grad(x, w.shape, g, **kwargs), want_w.numpy(),
                               rtol=1e-11, atol=1e-11)
    want_y = getattr(F, f"conv{nd}d")(_t(x), _t(w), **kwargs).numpy()
    np.testing.assert_allclose(tconv.conv(x, w, **kwargs), want_y, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("mode", ["same", "valid"])
def test_string_padding_matches_torch(mode):
    """'same' (stride 1, even and odd kernels, dilation) and 'valid' mean what torch means."""
    rng = np.random.default_rng(0)
    for k, d in [(3, 1), (4, 1), (2, 3), (5, 2)]:
        x = rng.standard_normal((2, 3, 11, 9))
        w = rng.standard_normal((4, 3, k, k - 1 if k > 1 else 1))
        want = F.conv2d(_t(x), _t(w), padding=mode, dilation=d).numpy()
        np.testing.assert_allclose(tconv.conv(x, w, padding=mode, dilation=d), want,
                                   rtol=1e-12, atol=1e-12)
        g = rng.standard_normal(want.shape)
        xt = _t(x).requires_grad_(True)
        (want_x,) = torch.autograd.grad(F.conv2d(xt, _t(w), padding=mode, dilation=d), xt, _t(g))
        np.testing.assert_allclose(tconv.conv_input_grad(x.shape, w, g, padding=mode, dilation=d),
                                   want_x.numpy(), rtol=1e-12, atol=1e-12)


def test_output_size_range_differs_from_torch_module():
    """A documented difference: output_padding may reach dilation - 1 (F.conv_transpose and
    tconv), but nn.ConvTranspose's output_size only reaches stride - 1 more than the minimum."""
    y, w = np.ones((1, 1, 1)), np.ones((1, 1, 1))
    want = F.conv_transpose1d(_t(y), _t(w), dilation=2, output_padding=1).numpy()
    np.testing.assert_array_equal(tconv.conv_transpose(y, w, dilation=2, output_size=(2,)), want)
    module = torch.nn.ConvTranspose1d(1, 1, 1, dilation=2, bias=False).double()
    with pytest.raises(ValueError, match="valid sizes range from"):
        module(_t(y), output_size=[2])


def test_same_with_stride_is_refused_by_torch():
    """PyTorch refuses padding='same' with stride > 1; tconv defines it as TensorFlow does:
    ceil(in / stride) outputs, the odd padding cell on the high side."""
    x, w = np.ones((1, 1, 7)), np.ones((1, 1, 4))
    with pytest.raises(RuntimeError, match="padding='same' is not supported for strided"):
        F.conv1d(_t(x), _t(w), stride=2, padding="same")
    got = tconv.conv(x, w, stride=2, padding="same")
    # total padding (4 - 1) * 2 + 4 - 7 = 3: one cell low, two high
    want = F.conv1d(F.pad(_t(x), (1, 2)), _t(w), stride=2).numpy()
    np.testing.assert_array_equal(got, want)
