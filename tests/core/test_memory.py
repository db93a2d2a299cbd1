"""Memory: auto stays within about output size x (kernel/stride)^d; matrix refuses big specs;
im2col holds one block of columns at a time."""
import math
import tracemalloc

import numpy as np
import pytest

import tconv
from tconv import bench
from tconv.methods import im2col, matrix
from tconv.ops import convolve, transpose, weight_grad
from tconv.spec import ConvSpec


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
    spec = ConvSpec.transpose((16, 512, 8, 8), (512, 256, 4, 4), stride=2, padding=1)
    need = matrix.estimate_bytes(spec, 4)
    assert need > matrix.MEMORY_LIMIT == 2 * 2**30
    with pytest.raises(tconv.ConvSpecError, match=r"method='matrix' would need about .* GiB"):
        tconv.conv_transpose(np.zeros(spec.output_shape, np.float32),
                             np.zeros(spec.weight_shape, np.float32), stride=2, padding=1,
                             method="matrix")
    small = ConvSpec.transpose((1, 2, 3), (2, 1, 3), stride=2)
    monkeypatch.setattr(matrix, "MEMORY_LIMIT", matrix.estimate_bytes(small, 8) - 1)
    with pytest.raises(tconv.ConvSpecError, match="MEMORY_LIMIT"):
        transpose(np.ones(small.output_shape), np.ones(small.weight_shape), small, "matrix")


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
