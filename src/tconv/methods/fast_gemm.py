"""``fast_gemm``: one large GEMM on the channels-last gradient, then col2im with strided adds.

The readable ``gemm`` method multiplies per sample in channels-first order. Here the whole batch
is one matrix product, channels last, so that BLAS sees the biggest possible problem::

    cols[(n, p), (j, c)] = sum_o y[n, o, p] * w[o, c, j]     (N*prod(out), C_out) @ (C_out, K*C_in)

followed by col2im: for each of the ``K = prod(kernel)`` taps, one strided add of a
``(N, *out, C_in)`` block into the channels-last full result at ``p*stride + j*dilation``.
Groups become a batch of GEMMs. When the kernel equals the stride (no dilation, padding or
output_padding) the copies tile the output and col2im is one transposing copy; depthwise layers
(one channel in and out per group) skip the GEMM and multiply-add per tap. On large outputs the
two halves of the batch run their col2im adds in two threads. Work: exactly the useful
multiplies (none on an inserted zero), plus ``K`` additions per gradient cell and output channel.

Extra memory: ``cols`` holds ``N * prod(out) * K * C_in`` elements, which is about the output
size times ``prod(kernel / stride)``; the channels-last copies of ``y`` and of the full result
add one input and one output size.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._threads import over_batch
from ..spec import ConvSpec


def gemm_columns(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``(groups, N, *out, K, C_in/groups)``: every gradient cell's kernel-sized patch."""
    n, g = spec.batch, spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    taps = math.prod(spec.kernel_size)
    rows = n * math.prod(spec.output_size)
    y_last = np.moveaxis(y, 1, -1).reshape(rows, g, co)                  # (N*P, g, C_out/g)
    w_mat = np.swapaxes(w.reshape(g, co, ci, taps), 2, 3).reshape(g, co, taps * ci)
    if g == 1:
        cols = (y_last[:, 0, :] @ w_mat[0])[None]                        # one GEMM
    else:
        cols = np.swapaxes(y_last, 0, 1) @ w_mat                         # (g, N*P, K*ci)
    return cols.reshape((g, n) + spec.output_size + (taps, ci))


#: Full results smaller than this add in the calling thread (threads cost more).
_THREADED_SIZE = 1 << 18


def _windows(spec: ConvSpec):
    """``(flat tap index, spatial slices of the full result that tap's copies land on)``."""
    for flat, tap in enumerate(itertools.product(*map(range, spec.kernel_size))):
        yield flat, spec.tap_window(tap)


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    g, ci = spec.groups, spec.in_channels // spec.groups
    if tiles(spec) and not depthwise(spec):
        return _place_tiles(gemm_columns(y, w, spec), spec)
    dtype = np.result_type(y, w)
    full = np.zeros((spec.batch,) + spec.canvas_size + (g, ci), dtype=dtype)
    threaded = full.size >= _THREADED_SIZE
    if depthwise(spec):
        # a GEMM of inner size 1 is an outer product; multiply-add per tap instead
        y_last = np.ascontiguousarray(np.moveaxis(y, 1, -1))[..., None]   # (N, *out, g, 1)
        taps = np.ascontiguousarray(w.reshape(g, -1).T)[..., None]         # (K, g, 1)

        def col2im(samples: slice) -> None:
            product = np.empty_like(y_last[samples], dtype=dtype)
            for flat, window in _windows(spec):
                full[(samples,) + window] += np.multiply(y_last[samples], taps[flat],
                                                         out=product)
    else:
        cols = gemm_columns(y, w, spec)

        def col2im(samples: slice) -> None:
            for flat, window in _windows(spec):
                full[(samples,) + window] += np.moveaxis(cols[:, samples, ..., flat, :], 0, -2)
    # the strided adds run on one core in NumPy; two halves of the batch add into disjoint
    # samples, so two threads can (measured 1.3-1.6x faster col2im on 2 cores)
    over_batch(col2im, spec.batch, threaded)
    x = full[(slice(None),) + spec.input_window].reshape(
        (spec.batch,) + spec.input_size + (spec.in_channels,))
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def depthwise(spec: ConvSpec) -> bool:
    """One channel in and one out per group: the GEMM would be an outer product, so the
    method multiplies and adds per tap instead."""
    return spec.in_channels == spec.groups and spec.out_channels == spec.groups


def tiles(spec: ConvSpec) -> bool:
    """Kernel == stride, no dilation, padding or output_padding: the stamped kernel copies tile
    the output exactly, without overlap or gaps (the U-Net upsampling layer)."""
    return (spec.kernel_size == spec.stride and all(d == 1 for d in spec.dilation)
            and all(p == (0, 0) for p in spec.padding) and not any(spec.output_padding))


def _place_tiles(cols: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """col2im without additions: one transposing copy puts every tile in its place,
    ``x[n, c, p*k + j] = cols[n, p, j, c]`` per dim (a pixel shuffle)."""
    nd, g = spec.ndim, spec.groups
    tiles = cols.reshape((g, spec.batch) + spec.output_size + spec.kernel_size
                         + (spec.in_channels // g,))
    # axes: 0 g, 1 N, 2..nd+1 out, nd+2..2nd+1 kernel, 2nd+2 ci  ->  N, g, ci, (out_i, k_i)...
    order = (1, 0, 2 * nd + 2) + tuple(a for i in range(nd) for a in (2 + i, 2 + nd + i))
    return np.ascontiguousarray(tiles.transpose(order)).reshape(spec.input_shape)


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the channels-last gradient
    and kernel, the columns ``N*prod(out)*K*C_in`` (depthwise: one product per thread
    instead), the channels-last canvas and the cropped copy of it (tiles: the columns only)."""
    n, co, ci = spec.batch, spec.out_channels, spec.in_channels
    cells = n * math.prod(spec.output_size)
    taps = math.prod(spec.kernel_size)
    layout = cells * co + math.prod(spec.weight_shape)
    if tiles(spec) and not depthwise(spec):
        return itemsize * (layout + cells * taps * ci)
    products = cells * co if depthwise(spec) else cells * taps * ci
    return itemsize * (layout + products + n * ci * (math.prod(spec.canvas_size)
                                                     + math.prod(spec.input_size)))
