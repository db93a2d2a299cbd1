"""NaN and infinities: every method gives the definition's answer, which is PyTorch's.

The random version (every spec, NaN/Inf placed at random, every method and operation) is in
tests/core/test_fuzz.py; here the examples worked by hand and the rules of each operation."""
import numpy as np
import pytest

import tconv
from tconv import CONV_METHODS, METHODS, ConvSpec
from tconv.methods import reference, scatter
from tconv.ops import run

import torch_reference

nan, inf = np.nan, np.inf
ALL = ("auto",) + METHODS


def _raw(fn, *args):
    """A naive loop on raw data: IEEE arithmetic on the NaN and infinities, warnings off."""
    with np.errstate(invalid="ignore", over="ignore"):
        return fn(*args)


def _same(got, want):
    """Equal, NaN where NaN (``assert_array_equal`` treats NaN as equal to NaN)."""
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.parametrize("method", ALL)
def test_the_issue_examples_for_every_method(method):
    """A NaN tap reaches the three cells of its stamps; an infinite cell of y the two cells of
    its stamp, not the inserted zeros around it (zero insertion and the polyphase methods
    multiplied those and gave all NaN)."""
    y, w = np.ones((1, 1, 3)), np.array([[[nan, 1.0, 1.0]]])
    _same(tconv.conv_transpose(y, w, method=method)[0, 0], [nan, nan, nan, 2, 1])
    y, w = np.array([[[1.0, inf, 1.0]]]), np.ones((1, 1, 2))
    _same(tconv.conv_transpose(y, w, stride=2, method=method)[0, 0], [1, 1, inf, inf, 1, 1])
    for y, w in [(np.ones((1, 1, 3)), np.array([[[nan, 1.0, 1.0]]])),
                 (np.array([[[1.0, inf, 1.0]]]), np.ones((1, 1, 2)))]:
        spec = ConvSpec.transpose(y.shape, w.shape, stride=2)
        _same(tconv.conv_transpose(y, w, stride=2, method=method),
              torch_reference.run("conv_transpose", y, w, spec))


@pytest.mark.parametrize("method", ALL)
def test_products_decide_the_kind(method):
    """0 * inf is NaN; +inf and -inf meeting in a cell are NaN; an infinity times a negative
    tap is -inf; padding crops stamps but does not multiply them."""
    y = np.array([[[0.0, 2.0, -1.0, 3.0]]])
    w = np.array([[[inf, 1.0]]])
    # cells: 0*inf | 0*1 + 2*inf | 2*1 + (-1)*inf | (-1)*1 + 3*inf | 3*1
    want = np.array([nan, inf, -inf, inf, 3.0])
    _same(tconv.conv_transpose(y, w, method=method)[0, 0], want)
    _same(tconv.conv_transpose(y, w, padding=1, method=method)[0, 0], want[1:-1])
    y = np.array([[[1.0, -1.0]]])
    w = np.array([[[inf, inf]]])
    _same(tconv.conv_transpose(y, w, method=method)[0, 0], [inf, nan, -inf])
    spec = ConvSpec.transpose(y.shape, w.shape)
    _same(torch_reference.run("conv_transpose", y, w, spec)[0, 0], [inf, nan, -inf])


@pytest.mark.parametrize("method", ALL)
def test_channels_and_groups_carry_the_kinds(method):
    """A NaN in one input channel reaches every output channel of its group, no other group."""
    y = np.ones((1, 4, 3))
    y[0, 1, 1] = nan                                    # group 0 (channels 0, 1)
    w = np.ones((4, 3, 2))
    got = tconv.conv_transpose(y, w, groups=2, method=method)
    assert got.shape == (1, 6, 4)
    assert np.isnan(got[0, :3, 1:3]).all() and not np.isnan(got[0, :3, [0, 3]]).any()
    assert not np.isnan(got[0, 3:]).any()
    spec = ConvSpec.transpose(y.shape, w.shape, groups=2)
    _same(got, torch_reference.run("conv_transpose", y, w, spec))


@pytest.mark.parametrize("method", CONV_METHODS + ("auto",))
def test_forward_and_weight_gradient_multiply_the_padding(method):
    """conv and weight_grad: the padded zeros are factors of the definition, as in PyTorch:
    conv1d(ones(3), [inf, 1, 1], padding=1) is [nan, inf, inf]."""
    x = np.ones((1, 1, 3))
    spec = ConvSpec.forward(x.shape, (1, 1, 3), padding=1)
    for w in (np.array([[[inf, 1.0, 1.0]]]), np.array([[[nan, 1.0, 1.0]]]),
              np.array([[[1.0, 0.0, -inf]]])):
        got = tconv.conv(x, w, padding=1, method=method)
        _same(got, torch_reference.run("conv", x, w, spec))
        _same(got, _raw(reference.conv, x, w, spec))
    _same(tconv.conv(x, np.array([[[inf, 1.0, 1.0]]]), padding=1, method=method)[0, 0],
          [nan, inf, inf])
    for x, g in ((np.array([[[inf, 1.0, 1.0]]]), np.array([[[1.0, 0.0, 1.0]]])),
                 (np.ones((1, 1, 3)), np.array([[[inf, 1.0, 1.0]]])),
                 (np.ones((1, 1, 3)), np.array([[[1.0, nan, 1.0]]]))):
        got = tconv.conv_weight_grad(x, (1, 1, 3), g, padding=1, method=method)
        _same(got, torch_reference.run("weight_grad", x, g, spec))
        _same(got, _raw(reference.weight_grad, x, g, spec))
    got = tconv.conv_weight_grad(np.array([[[inf, 1.0, 1.0]]]), (1, 1, 3),
                                 np.array([[[1.0, 0.0, 1.0]]]), padding=1, method=method)
    _same(got[0, 0], [nan, inf, 1.0])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
def test_every_float_dtype_and_the_finite_cells(dtype):
    """Every float dtype places the same kinds, and the finite cells are the sums of their
    finite products, exactly as on the array with the non-finite values zeroed."""
    rng = np.random.default_rng(3)
    spec = ConvSpec.transpose((2, 4, 5, 6), (4, 3, 3, 2), stride=(2, 3), padding=((1, 0), (2, 1)),
                              dilation=(1, 2), groups=2, output_padding=(1, 0))
    y = rng.integers(-3, 4, spec.output_shape).astype(dtype)
    w = rng.integers(-3, 4, spec.weight_shape).astype(dtype)
    y[0, 1, 2, 3], y[1, 2, 0, 0], w[0, 0, 1, 1], w[3, 2, 2, 0] = nan, -inf, inf, -inf
    want = _raw(scatter.conv_transpose, y.astype(np.float64), w.astype(np.float64), spec)
    finite = np.isfinite(want)
    assert finite.any() and np.isnan(want).any() and np.isinf(want).any()
    zeroed = scatter.conv_transpose(np.nan_to_num(y, nan=0, posinf=0, neginf=0),
                                    np.nan_to_num(w, nan=0, posinf=0, neginf=0), spec)
    for method in ALL:
        got = run("conv_transpose", y, w, spec, method)
        assert got.dtype == dtype
        _same(np.where(finite, 0, got).astype(np.float64), np.where(finite, 0, want))
        np.testing.assert_array_equal(got[finite], zeroed[finite].astype(dtype))


def test_finite_input_runs_the_method_as_is():
    """No NaN/Inf: the method's own numbers (here a zero_insertion that would differ from the
    NaN path: nothing is placed), and no warning about invalid values."""
    rng = np.random.default_rng(0)
    y, w = rng.standard_normal((2, 3, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    with np.errstate(all="raise"):
        for method in ALL:
            tconv.conv_transpose(y, w, stride=2, method=method)
    y[0, 0, 0, 0] = nan
    with np.errstate(all="raise"):       # the NaN path multiplies no NaN or infinity either
        for method in ALL:
            assert np.isnan(tconv.conv_transpose(y, w, stride=2, method=method)).any()


def test_torch_onednn_spreads_nan_further_in_batched_strided_transposes():
    """A known difference of PyTorch 2.13's oneDNN kernel (float32, batch >= 2, stride > 1): a
    NaN tap reaches a cell its stamp does not cover, as zero insertion would. PyTorch's own
    kernels (float64, or oneDNN off) and tconv give the definition. If this starts to fail,
    PyTorch fixed it: drop the exception in tests/core/test_fuzz.py."""
    y, w = np.array([[[1.0]], [[2.0]]]), np.array([[[nan, 1.0, 0.0]]])
    spec = ConvSpec.transpose(y.shape, w.shape, stride=2)
    want = np.array([[[nan, 1.0, 0.0]], [[nan, 2.0, 0.0]]])
    for method in ALL:
        _same(tconv.conv_transpose(y, w, stride=2, method=method), want)
    _same(torch_reference.run("conv_transpose", y, w, spec, np.float64), want)
    _same(torch_reference.run("conv_transpose", y, w, spec, np.float32, onednn=False), want)
    onednn = torch_reference.run("conv_transpose", y, w, spec, np.float32)
    _same(onednn, np.array([[[nan, 1.0, nan]], [[nan, 2.0, nan]]]))


def test_a_finite_result_of_every_product_proves_the_operands_did_not_matter(monkeypatch):
    """fast_native multiplies every product of the definition, so ``run`` scans its result
    rather than its operands: a NaN or infinity that takes part in no product (a cell no
    window reads, a gradient cell whose products are all cropped) leaves the result as the
    definition's, and nothing is placed. Where it skips products (the channels-first
    depthwise kernels skip a padded forward layer's padding, a factor of the definition)
    the operands are scanned and the definition's NaN placed."""
    from tconv import nonfinite
    from tconv.methods import fast_native

    if not fast_native.AVAILABLE:
        pytest.skip("the compiled extension is not built here")
    placed = []
    place = nonfinite.place
    monkeypatch.setattr(nonfinite, "place", lambda *args: placed.append(args[0]) or place(*args))
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    x[0, 0, 1] = nan                                  # stride 2, kernel 1: never read
    spec = ConvSpec.forward(x.shape, (1, 1, 1), stride=2)
    got = run("conv", x, np.full((1, 1, 1), 2.0), spec, "fast_native")
    _same(got[0, 0], [2.0, 6.0, 10.0])
    _same(got, _raw(reference.conv, x, np.full((1, 1, 1), 2.0), spec))
    y = np.array([[[inf, 3.0, -inf]]])               # padding 1 crops x[-1] and x[1]
    spec = ConvSpec.transpose(y.shape, (1, 1, 1), padding=1)
    got = run("conv_transpose", y, np.full((1, 1, 1), 2.0), spec, "fast_native")
    _same(got[0, 0], [6.0])
    _same(got, _raw(scatter.conv_transpose, y, np.full((1, 1, 1), 2.0), spec))
    assert placed == []
    x, w = np.ones((1, 2, 1, 1)), np.ones((2, 1, 3, 3))
    w[1, 0, 0, 0] = inf                               # multiplies only the padding
    spec = ConvSpec.forward(x.shape, w.shape, padding=1, groups=2)
    assert fast_native.channels_first_depthwise(spec)
    got = run("conv", x, w, spec, "fast_native")
    _same(got, _raw(reference.conv, x, w, spec))
    _same(got.ravel(), [1.0, nan])
    assert placed == ["conv"]


def test_the_compiled_scan_finds_every_nan_and_infinity():
    """The compiled scan behind ``nonfinite.finite`` reads the bits 64 bytes at a time, four
    vectors per step, then the tail one by one: a NaN or an infinity anywhere (first, in a
    vector, in the tail, last) is found, and it agrees with NumPy on both float dtypes; other
    dtypes and strided views are NumPy's."""
    from tconv import nonfinite
    from tconv.methods import fast_native

    if not fast_native.AVAILABLE:
        pytest.skip("the compiled extension is not built here")
    for dtype in (np.float32, np.float64):
        for n in (1, 7, 64, 1001):
            a = np.arange(n, dtype=dtype) - n / 2
            assert fast_native.all_finite(a) is True and nonfinite.finite(a)
            for pos in {0, min(1, n - 1), n // 2, n - 1, max(0, n - 9)}:
                for bad in (nan, inf, -inf, np.float64("-nan")):
                    b = a.copy()
                    b[pos] = bad
                    assert fast_native.all_finite(b) is False, (dtype, n, pos, bad)
                    assert not nonfinite.finite(b)
    a = np.ones(50, dtype=np.float32)
    a[1] = nan
    assert fast_native.all_finite(a[::2]) is None and nonfinite.finite(a[::2])
    assert fast_native.all_finite(a.astype(np.float16)) is None
    assert not nonfinite.finite(a.astype(np.float16))
