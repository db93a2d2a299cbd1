"""``im2col``: the forward convolution and its weight gradient, one large GEMM per block.

Lay every window the kernel visits in the padded input out as a column (the first of the two
conventional lowerings; the transposed direction is ``fast_gemm``'s col2im)::

    cols[g, (i, j), (n, p)] = x_padded[n, g*C_in/g + i, p*stride + j*dilation]

Then both products are single GEMMs per group::

    y[n, g*C_out/g + o, p]  =  sum_(i, j)  w[g*C_out/g + o, i, j] * cols[g, (i, j), (n, p)]
                               (C_out/g, C_in/g*K) @ (C_in/g*K, nb*P)
    dw[g*C_out/g + o, i, j] += sum_(n, p)  grad[n, g*C_out/g + o, p] * cols[g, (i, j), (n, p)]
                               (C_out/g, nb*P) @ (nb*P, C_in/g*K)

``K = prod(kernel)``, ``P = prod(out)``. The columns are one copy of a strided window view
(no Python loop over taps, samples or positions). They are built a block at a time: whole
samples while a block's columns fit in :data:`BLOCK_BYTES`, else slabs of one sample along its
first output dim. (Gathering the next block in a second thread, gathering one block in two
halves, or two threads each gathering and multiplying its own blocks with single-threaded BLAS:
each measured slower on 2 cores, 10-60%, than one thread with two-thread BLAS.)

Work: exactly the useful multiply-adds, plus one copy of ``C_in * K * P`` elements per sample
(the columns read each input cell about ``prod(kernel / stride)`` times).
Extra memory: a block's columns, its GEMM result (or gradient copy) and its padded input stay
under :data:`BLOCK_BYTES`, except that a block holds at least one output row, and a sample cut
into slabs is padded whole.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._arrays import pad_or_crop
from ..spec import ConvSpec

#: Upper bound on one block's columns (bytes): cache-sized, so that the gather and the GEMM
#: after it meet in cache; on the bench layers 8 MiB was best or near it among 2 to 128 MiB.
BLOCK_BYTES = 8 << 20

Block = tuple[slice, slice]   # samples, rows of the first output dim


def plan(spec: ConvSpec, itemsize: int) -> list[Block]:
    """The blocks, in order: whole samples while they fit in :data:`BLOCK_BYTES`, else row slabs
    of one sample. A block's cost is its columns, its part of the GEMM's result (or of the
    gradient's copy) and, for whole samples, their padded input (counted as unpadded)."""
    samples, rows = block_size(spec, itemsize)
    out = spec.output_size
    if rows == out[0]:
        return [(slice(n, min(n + samples, spec.batch)), slice(0, out[0]))
                for n in range(0, spec.batch, samples)]
    return [(slice(n, n + 1), slice(r, min(r + rows, out[0])))
            for n in range(spec.batch) for r in range(0, out[0], rows)]


def block_size(spec: ConvSpec, itemsize: int) -> tuple[int, int]:
    """``(samples, rows)`` of the first (largest) block of :func:`plan`, in O(1): whole
    samples when one fits in :data:`BLOCK_BYTES`, else slabs of ``rows`` output rows."""
    out = spec.output_size
    row = itemsize * math.prod(out[1:]) * (
        spec.in_channels * math.prod(spec.kernel_size) + spec.out_channels)
    sample = row * out[0] + itemsize * math.prod(spec.input_shape[1:])
    if sample <= BLOCK_BYTES:
        return min(max(1, BLOCK_BYTES // max(sample, 1)), max(spec.batch, 1)), out[0]
    return 1, min(max(1, BLOCK_BYTES // max(row, 1)), out[0])


def windows(x: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``(C_in, *kernel, N, *out)`` view of padded ``x``: ``[c, j, n, p] = x_padded[n, c,
    p*stride + j*dilation]``. No copy but the padding. (With output_padding reaching past
    the stride, ``x`` has cells beyond the last window; the view stops at ``spec.output_size``.)"""
    nd = spec.ndim
    xp = pad_or_crop(x, spec.padding)
    view = sliding_window_view(xp, spec.extents, axis=tuple(range(2, 2 + nd)))
    view = view[(slice(None),) * 2
                + tuple(slice(0, m * s, s) for m, s in zip(spec.output_size, spec.stride))
                + tuple(slice(None, None, d) for d in spec.dilation)]   # (N, C, *out, *k)
    return view.transpose((1,) + tuple(range(2 + nd, 2 + 2 * nd)) + (0,)
                          + tuple(range(2, 2 + nd)))


def columns(x: np.ndarray, spec: ConvSpec, blocks: list[Block]) -> Iterator[
        tuple[slice, slice, np.ndarray]]:
    """``(samples, rows, cols)`` per block; ``cols`` is ``(groups, C_in/g*K, nb*rows*rest)``."""
    nd, g = spec.ndim, spec.groups
    padded_for, view = None, None
    for samples, rows in blocks:
        if samples != padded_for:           # pad a block of samples once for all its slabs
            padded_for, view = samples, windows(x[samples], spec)
        block = view[(slice(None),) * (nd + 2) + (rows,)]
        yield samples, rows, block.reshape(g, -1, math.prod(block.shape[nd + 1:]))


def conv(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Forward convolution of ``spec`` (``x``, ``w`` already in the compute dtype)."""
    g = spec.groups
    y = np.empty(spec.output_shape, dtype=np.result_type(x, w))
    w_mat = w.reshape(g, spec.out_channels // g, -1)                    # (g, C_out/g, ci*K)

    for samples, rows, cols in columns(x, spec, plan(spec, x.dtype.itemsize)):
        part = (w_mat @ cols).reshape(
            (spec.out_channels, samples.stop - samples.start, rows.stop - rows.start)
            + spec.output_size[1:])
        y[samples, :, rows] = np.moveaxis(part, 0, 1)
        del cols, part          # free this block before the generator builds the next one
    return y


def weight_grad(x: np.ndarray, grad: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Weight gradient of ``spec``'s convolution for upstream gradient ``grad``."""
    g = spec.groups
    co = spec.out_channels // g
    dw = np.zeros((g, co, spec.weight_shape[1] * math.prod(spec.kernel_size)),
                  dtype=np.result_type(x, grad))
    for samples, rows, cols in columns(x, spec, plan(spec, x.dtype.itemsize)):
        block = np.moveaxis(grad[samples, :, rows], 1, 0).reshape(g, co, -1)  # (g, co, nb*P)
        dw += block @ np.swapaxes(cols, 1, 2)
        del cols, block         # free this block before the generator builds the next one
    return dw.reshape(spec.weight_shape)


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result, for the first (largest)
    block of :func:`plan` (:func:`block_size`, without listing the blocks): its padded
    samples twice (the next block's are padded while the last ones are still referenced), its
    columns, and its GEMM result (the weight gradient: its copy of the gradient and a
    weight-sized product)."""
    if spec.batch == 0:
        return 0
    nb, nr = block_size(spec, itemsize)
    padded = nb * spec.in_channels * math.prod(spec.padded_input_size)
    cells = nb * nr * math.prod(spec.output_size[1:])
    cols = spec.in_channels * math.prod(spec.kernel_size) * cells
    if operation == "weight_grad":
        return itemsize * (2 * padded + cols + spec.out_channels * cells
                           + math.prod(spec.weight_shape))
    return itemsize * (2 * padded + cols + spec.out_channels * cells)
