"""Memory: every method's estimate bounds its measured peak; auto stays within about output size
x (kernel/stride)^d; the one limit refuses what exceeds it before allocating; im2col holds one
block of columns at a time."""
import math
import os
import tracemalloc

import numpy as np
import pytest

import tconv
from tconv import bench, memory, methods
from tconv.methods import im2col
from tconv.ops import convolve, run, transpose, weight_grad
from tconv.spec import ConvSpec, ConvSpecError


def _peak(fn):
    """``fn()`` and the peak of the memory NumPy allocated while it ran (tracemalloc)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


SPECS = [
    ConvSpec.transpose((4, 64, 8, 8), (64, 32, 4, 4), stride=2, padding=1),
    ConvSpec.transpose((2, 32, 16, 16), (32, 16, 2, 2), stride=2),
    ConvSpec.transpose((2, 16, 256), (16, 16, 8), stride=4, padding=2),
    ConvSpec.transpose((1, 8, 6, 6, 6), (8, 8, 4, 4, 4), stride=2, padding=1),
    ConvSpec.transpose((2, 32, 8, 8), (32, 1, 4, 4), stride=2, padding=1, groups=32),
    ConvSpec.transpose((2, 16, 8, 8), (16, 16, 3, 3), stride=2, padding=1, output_padding=1),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.describe()[:60])
def test_auto_extra_memory_is_about_output_times_kernel_over_stride(spec):
    rng = np.random.default_rng(0)
    y = rng.standard_normal(spec.output_shape).astype(np.float32)
    w = rng.standard_normal(spec.weight_shape).astype(np.float32)
    out_bytes = math.prod(spec.input_shape) * 4
    ratio = math.prod(k / s for k, s in zip(spec.kernel_size, spec.stride))
    x, peak = _peak(lambda: transpose(y, w, spec, "auto"))
    extra = peak - x.nbytes
    # the columns (output x (k/s)^d), one full-size buffer, one layout copy of each side
    allowed = out_bytes * (max(ratio, 1.0) + 2) + y.nbytes + w.nbytes + 2**20
    assert extra <= allowed, (extra, allowed)


def test_matrix_refuses_what_exceeds_the_limit(monkeypatch):
    """The matrix method's peak, which its old guard put at 2.15x below, is bounded by its own
    estimate; above the one limit it is refused before building anything."""
    spec = ConvSpec.transpose((16, 512, 8, 8), (512, 256, 4, 4), stride=2, padding=1)
    need = memory.need("conv_transpose", spec, "matrix", np.zeros(spec.output_shape, np.float32),
                       np.zeros(spec.weight_shape, np.float32), np.float32)
    monkeypatch.setattr(tconv, "MEMORY_LIMIT", need.total - 1)
    with pytest.raises(tconv.ConvSpecError, match=r"method='matrix' needs about .* GiB .*more "
                                                  r"than the memory limit of .* GiB "
                                                  r"\(tconv.MEMORY_LIMIT\)"):
        tconv.conv_transpose(np.zeros(spec.output_shape, np.float32),
                             np.zeros(spec.weight_shape, np.float32), stride=2, padding=1,
                             method="matrix")


def test_im2col_extra_memory_is_one_block_of_columns():
    """The columns never exist whole: extra memory is a block, the padded input and the
    GEMM's result, not C_in * K * P per sample for the batch."""
    spec = ConvSpec.forward((16, 32, 64, 64), (16, 32, 3, 3), stride=1, padding=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(spec.input_shape).astype(np.float32)
    w = rng.standard_normal(spec.weight_shape).astype(np.float32)
    columns_whole = 4 * spec.batch * spec.in_channels * 9 * 64 * 64
    y, peak = _peak(lambda: convolve(x, w, spec, "im2col"))
    assert peak - y.nbytes <= 2 * im2col.BLOCK_BYTES + 2**20 < columns_whole


def test_im2col_bounds_the_result_block_too():
    """Few columns, a large result (1 input channel, 256 output channels): the GEMM's result
    comes a block at a time as well, not as a second copy of the whole output."""
    spec = ConvSpec.forward((8, 1, 64, 64), (256, 1, 1, 1))
    x = np.ones(spec.input_shape, np.float32)
    w = np.ones(spec.weight_shape, np.float32)
    y, peak = _peak(lambda: convolve(x, w, spec, "im2col"))
    assert y.nbytes == 32 * 2**20
    assert peak - y.nbytes <= 2 * im2col.BLOCK_BYTES + 2**20 < y.nbytes
    g, peak = _peak(lambda: tconv.conv_weight_grad(x, w.shape, y, method="im2col"))
    assert peak <= 2 * im2col.BLOCK_BYTES + 2**20


@pytest.mark.parametrize("op", ["conv_transpose", "conv", "weight_grad"])
@pytest.mark.parametrize("layer", bench.layers(), ids=lambda ly: ly.name.split(" N")[0])
def test_auto_extra_memory_on_the_anchor_layers_is_at_most_twice_the_output(layer, op):
    """The memory bar of ``tconv bench``'s layers, float32: beyond its operands and its result,
    ``auto`` allocates at most twice the result for the transposed convolution (the output is
    the largest array there); the forward convolution and the weight gradient return arrays
    smaller than their input (the weight gradient: the weights), and stay within twice their
    largest array."""
    spec = layer.spec
    rng = np.random.default_rng(0)
    x, w, g = (rng.standard_normal(s).astype(np.float32) for s in
               (spec.input_shape, spec.weight_shape, spec.output_shape))
    fn = {"conv_transpose": lambda: transpose(g, w, spec, "auto"),
          "conv": lambda: convolve(x, w, spec, "auto"),
          "weight_grad": lambda: weight_grad(x, g, spec, "auto")}[op]
    result, peak = _peak(fn)
    extra = peak - result.nbytes
    scale = result.nbytes if op == "conv_transpose" else max(x.nbytes, w.nbytes, g.nbytes)
    assert extra <= 2 * scale, (extra / scale, spec.describe())


# -- the estimates against tracemalloc ------------------------------------------------------------

ESTIMATED = SPECS + [
    ConvSpec.transpose((3, 6, 7, 5), (6, 2, 3, 2), stride=(3, 1), padding=((2, 0), (0, 1)),
                       dilation=(2, 3), groups=3),
    ConvSpec.transpose((1, 1, 4), (1, 1, 400)),                     # kernel >> input
    ConvSpec.transpose((1, 1, 2), (1, 1, 1), stride=1000, padding=400),   # stride >> kernel
    ConvSpec.transpose((2, 4, 30, 30), (4, 4, 1, 1), stride=3, padding=5),
    ConvSpec.transpose((4, 16, 32, 32), (16, 8, 3, 3), padding=1),
    ConvSpec.transpose((2, 8, 5, 6), (8, 3, 2, 3), stride=2, dilation=3, output_padding=(2, 1)),
]


def _operands(operation, spec, dtype, rng):
    shapes = {"conv_transpose": (spec.output_shape, spec.weight_shape),
              "conv": (spec.input_shape, spec.weight_shape),
              "weight_grad": (spec.input_shape, spec.output_shape)}[operation]
    if np.dtype(dtype).kind in "iu":
        return [rng.integers(-3, 4, s).astype(dtype) for s in shapes]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.int8])
@pytest.mark.parametrize("operation", ["conv_transpose", "conv", "weight_grad"])
def test_every_estimate_is_an_upper_bound_within_a_small_factor(operation, dtype):
    """For every method: the peak tracemalloc measures while ``run`` computes (result, copies,
    working memory) never exceeds the estimate the limit is checked against, and the estimate of
    the working memory is at most four times what was measured (a bound, not a guess)."""
    rng = np.random.default_rng(0)
    loose = []
    for spec in ESTIMATED:
        a, b = _operands(operation, spec, dtype, rng)
        for method in methods.names(operation):
            if method == "scatter" and math.prod(spec.input_shape) > 20_000:
                continue                                       # a Python loop per cell
            need = memory.need(operation, spec, method, a, b, np.dtype(dtype))
            result, peak = _peak(lambda: run(operation, a, b, spec, method))
            label = f"{method} {spec.describe()}"
            assert peak <= need.total, (label, peak, need)
            measured_work = peak - need.result - need.copies
            if need.work > 2**20:
                assert need.work <= 4 * max(measured_work, 0) + 2**16, (label, measured_work, need)
                loose.append(need.work / measured_work)
    assert loose, "some working memory large enough to compare"


def test_a_result_too_large_is_refused_before_allocation(monkeypatch):
    """A conv_transpose to a 10**12-cell output: refused at once, naming the output shape,
    whatever the method; nothing of that size is allocated."""
    monkeypatch.delenv("TCONV_MEMORY_LIMIT", raising=False)
    monkeypatch.setattr(tconv, "MEMORY_LIMIT", "64M")
    y, w = np.ones((1, 1, 10**6)), np.ones((1, 1, 10**6))
    spec = ConvSpec.transpose(y.shape, w.shape, stride=10**6)
    assert math.prod(spec.input_shape) == 10**12
    for method in ("auto",) + tconv.METHODS:
        with pytest.raises(ConvSpecError, match=rf"the result \(1, 1, {10**12}\) 7.28 TiB") as info:
            tconv.conv_transpose(y, w, stride=10**6, method=method)
        assert "limit of 64 MiB (tconv.MEMORY_LIMIT)" in str(info.value)
    _, peak = _peak(lambda: pytest.raises(ConvSpecError, tconv.conv_transpose, y, w,
                                          stride=10**6))
    assert peak < 8 * (y.nbytes + w.nbytes)     # proportional to the data, not to the result


def test_the_limit_from_the_environment_and_from_tconv(monkeypatch):
    spec = ConvSpec.forward((2, 3, 40, 40), (4, 3, 3, 3), padding=1)
    x, w = np.ones(spec.input_shape), np.ones(spec.weight_shape)
    need = memory.need("conv", spec, "im2col", x, w, np.float64).total
    monkeypatch.setattr(tconv, "MEMORY_LIMIT", None)
    monkeypatch.setenv("TCONV_MEMORY_LIMIT", str(need - 1))
    with pytest.raises(ConvSpecError, match=r"\$TCONV_MEMORY_LIMIT"):
        tconv.conv(x, w, padding=1, method="im2col")
    monkeypatch.setenv("TCONV_MEMORY_LIMIT", "1G")
    assert memory.limit() == 2**30
    assert tconv.conv(x, w, padding=1, method="im2col").shape == spec.output_shape
    monkeypatch.setattr(tconv, "MEMORY_LIMIT", need - 1)      # the setting wins, read per call
    with pytest.raises(ConvSpecError, match=r"\(tconv.MEMORY_LIMIT\)"):
        tconv.conv(x, w, padding=1, method="im2col")
    for spelling, value in [("8G", 8 << 30), ("512m", 512 << 20), ("1.5GiB", 3 << 29),
                            ("100", 100), (" 2 K ", 2048), ("3kb", 3072)]:
        assert memory.parse_bytes(spelling) == value
    for bad in ["eight", "-1", "1X", "", "1e9", 2.5, True]:
        monkeypatch.setattr(tconv, "MEMORY_LIMIT", bad)
        with pytest.raises(ConvSpecError, match="tconv.MEMORY_LIMIT must be"):
            tconv.conv(x, w, padding=1)
    monkeypatch.setattr(tconv, "MEMORY_LIMIT", None)
    monkeypatch.setenv("TCONV_MEMORY_LIMIT", "lots")
    with pytest.raises(ConvSpecError, match="TCONV_MEMORY_LIMIT must be .* got 'lots'"):
        tconv.conv(x, w, padding=1)


def test_the_default_limit_is_half_of_the_machine(monkeypatch):
    monkeypatch.setattr(tconv, "MEMORY_LIMIT", None)
    monkeypatch.delenv("TCONV_MEMORY_LIMIT", raising=False)
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < memory.limit() <= physical // 2
    assert memory.limit() == memory.machine_bytes() // 2


def test_auto_picks_a_method_that_fits():
    """A 40,000-tap kernel on a 4-cell input: fast_polyphase_cf's gather is (K/s)^2 (gigabytes)
    and auto must not take it; a stride of 10**9 with padding: the canvas methods (gemm,
    fast_gemm) need gigabytes, auto takes one that does not, and the result is right; so does
    the scatter, which cuts each copy to x."""
    y, w = np.ones((1, 1, 4)), np.ones((1, 1, 40_000))
    spec = ConvSpec.transpose(y.shape, w.shape)
    assert memory.need("conv_transpose", spec, "fast_polyphase_cf", y, w, np.float64).total > 2**33
    chosen = memory.plan("conv_transpose", spec, "auto", y, w, np.float64)
    assert chosen.method != "fast_polyphase_cf" and chosen.total < 2**24
    x, peak = _peak(lambda: tconv.conv_transpose(y, w))
    assert peak <= chosen.total < 2**24
    np.testing.assert_array_equal(x[0, 0], np.convolve(y[0, 0], w[0, 0]))

    y = np.arange(1.0, 3.0).reshape(1, 1, 2)
    spec = ConvSpec.transpose(y.shape, (1, 1, 1), stride=10**9, padding=5 * 10**8 - 1)
    assert spec.input_shape == (1, 1, 3)        # cells 5e8-1 .. 5e8+1 of a 1e9+1 canvas
    for method in ("gemm", "fast_gemm"):
        assert memory.need("conv_transpose", spec, method, y, np.ones((1, 1, 1)),
                           np.float64).work > 2**32
    x, peak = _peak(lambda: tconv.conv_transpose(y, np.full((1, 1, 1), 3.0), stride=10**9,
                                                 padding=5 * 10**8 - 1))
    assert peak < 2**20
    np.testing.assert_array_equal(x, np.zeros((1, 1, 3)))
    w = np.array([[[3.0, 5.0]]])           # canvas: y0*w0, y0*w1, 0 ... 0, y1*w0, y1*w1
    for method in ("scatter", "auto"):
        for padding, want in [(((1, 10**9 - 1),), [5.0, 0.0]), (((10**9 - 1, 1),), [0.0, 6.0])]:
            x, peak = _peak(lambda: tconv.conv_transpose(y, w, stride=10**9, padding=padding,
                                                         method=method))
            assert peak < 2**20
            np.testing.assert_array_equal(x[0, 0], want)


@pytest.mark.parametrize("operation", ["conv_transpose", "conv", "weight_grad"])
def test_the_estimate_bounds_the_nan_path_too(operation):
    """With a NaN and an infinity among the operands, placing them (zeroed copies, indicator
    arrays, integer counts) is part of the estimate the limit is checked against."""
    rng = np.random.default_rng(1)
    for spec in ESTIMATED[:6]:
        a, b = _operands(operation, spec, np.float32, rng)
        a.flat[0], b.flat[-1] = np.nan, -np.inf
        for method in methods.names(operation):
            if method == "scatter" and math.prod(spec.input_shape) > 20_000:
                continue
            need = memory.need(operation, spec, method, a, b, np.dtype(np.float32), False)
            _, peak = _peak(lambda: run(operation, a, b, spec, method))
            assert peak <= need.total, (method, spec.describe(), peak, need)


def test_exact_arithmetic_is_refused_over_the_limit_too(monkeypatch):
    """The oracle holds Python integers (about 80-140 bytes an element, measured): above the
    limit it is refused naming the sizes, not left to a MemoryError."""
    spec = ConvSpec.transpose((2, 8, 32, 32), (8, 4, 3, 3), stride=2, padding=1)
    rng = np.random.default_rng(0)
    y, w = rng.standard_normal(spec.output_shape), rng.standard_normal(spec.weight_shape)
    count = y.size + w.size + math.prod(spec.input_shape)
    _, peak = _peak(lambda: tconv.exact.conv_transpose(y, w, spec))
    assert peak <= count * tconv.exact.BYTES_PER_ELEMENT
    monkeypatch.setattr(tconv, "MEMORY_LIMIT", count * tconv.exact.BYTES_PER_ELEMENT - 1)
    with pytest.raises(ConvSpecError, match=rf"exact transposed convolution .* \(Python integers "
                                            rf"for {count} elements\), more than the memory limit"):
        tconv.exact.conv_transpose(y, w, spec)


def test_verify_reports_a_method_the_limit_refuses_and_runs_the_others(monkeypatch):
    """Two gradient cells 10**9 apart, cropped to the two cells of x between them: zero
    insertion and the commuted form stretch the gradient over 10**9 cells, gemm and fast_gemm
    add onto the uncropped 10**9-cell result; verify says so on their rows (N/A, with the
    sizes) and checks every other method against the exact result."""
    from tconv.verify import verify

    monkeypatch.setattr(tconv, "MEMORY_LIMIT", "1G")
    spec = ConvSpec.transpose((1, 1, 2), (1, 1, 2), stride=10**9, padding=((10**9 - 1, 1),))
    assert spec.input_shape == (1, 1, 2)
    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(spec.weight_shape), rng.standard_normal(spec.output_shape)
    report = verify(spec, w, g)
    status = {row.name: row.status for row in report.rows}
    refused = {"tconv zero_insertion", "tconv commuted", "tconv gemm", "tconv fast_gemm"}
    assert {name for name, s in status.items() if s == "N/A"} == refused
    assert {s for name, s in status.items() if name not in refused} == {"PASS"}
    assert len(status) == len(tconv.METHODS)
    for row in report.rows:
        if row.name in refused:
            assert "more than the memory limit of 1 GiB (tconv.MEMORY_LIMIT)" in row.note
    assert report.passed and report.exact[0, 0, 1] == g[0, 0, 1] * w[0, 0, 0]
