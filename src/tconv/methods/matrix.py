"""``matrix``: the forward convolution as a sparse matrix ``C``; the transposed one is ``C.T``.

For one sample, flatten ``x`` to a vector of ``C_in * prod(in)`` entries and ``y`` to one of
``C_out * prod(out)``. The forward convolution is linear, ``y = C x``, with one stored entry per
(output channel, input channel of its group, output position, kernel tap that lands inside the
unpadded input)::

    C[(o, p), (g*C_in/g + i, p*stride + j*dilation - pad_low)] = w[o, i, j]

Taps that land in the padding read zeros and store nothing. The input gradient of ``y = C x`` is
``C.T @ grad_y`` — the transposed convolution, by definition of the transpose. Output padding only
widens the columns (input positions no output reads).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..spec import ConvSpec


def _taps(spec: ConvSpec):
    """Flat (output position, input position, kernel tap) triples of the in-range taps."""
    rows, cols, taps = [], [], []
    positions = np.indices(spec.output_size).reshape(spec.ndim, -1)   # (d, P)
    for flat_tap, tap in enumerate(itertools.product(*map(range, spec.kernel_size))):
        q = [p * s + j * d - lo for p, s, j, d, (lo, _) in
             zip(positions, spec.stride, tap, spec.dilation, spec.padding)]
        inside = np.logical_and.reduce([(qi >= 0) & (qi < n) for qi, n in
                                        zip(q, spec.input_size)])
        rows.append(np.flatnonzero(inside))
        cols.append(np.ravel_multi_index([qi[inside] for qi in q], spec.input_size))
        taps.append(np.full(rows[-1].size, flat_tap))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(taps)


def forward_matrix(w: np.ndarray, spec: ConvSpec):
    """The sparse ``(C_out * prod(out), C_in * prod(in))`` matrix of the forward convolution
    (a ``scipy.sparse.csr_matrix``; SciPy is imported here, not with tconv)."""
    import scipy.sparse

    co, ci = spec.out_channels // spec.groups, spec.in_channels // spec.groups
    n_out, n_in = int(np.prod(spec.output_size)), int(np.prod(spec.input_size))
    pos_out, pos_in, tap = _taps(spec)
    o = np.arange(spec.out_channels)[:, None, None]                    # (C_out, 1, 1)
    i = (o // co) * ci + np.arange(ci)[None, :, None]                  # (C_out, C_in/g, 1)
    rows = np.broadcast_to(o * n_out + pos_out, (spec.out_channels, ci, pos_out.size))
    cols = i * n_in + pos_in
    values = w.reshape(spec.out_channels, ci, -1)[:, :, tap]           # (C_out, C_in/g, M)
    return scipy.sparse.csr_matrix((values.ravel(), (rows.ravel(), cols.ravel())),
                                   shape=(spec.out_channels * n_out, spec.in_channels * n_in))


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    c = forward_matrix(w, spec)
    x = c.T @ y.reshape(spec.batch, c.shape[0]).T                # (C_in * prod(in), N)
    return np.ascontiguousarray(np.asarray(x).T).reshape(spec.input_shape)


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result, measured with tracemalloc
    (docs/performance.md): per stored entry its row, column and value, SciPy's COO copy and
    its CSR arrays, ``32 + 3*itemsize`` bytes with int32 indices (``48 + 3*itemsize`` with
    int64); per in-range (position, tap) pair the three index lists and their concatenation
    (48 bytes); per kernel tap the loop's own arrays (768 bytes)."""
    taps = math.prod(spec.kernel_size)
    pairs = math.prod(spec.output_size) * taps
    nnz = spec.out_channels * (spec.in_channels // spec.groups) * pairs
    rows = spec.out_channels * math.prod(spec.output_size)
    cols = spec.in_channels * math.prod(spec.input_size)
    index = 4 if max(nnz, rows, cols) < 2**31 else 8
    return nnz * (8 * index + 3 * itemsize) + 48 * pairs + 768 * taps
