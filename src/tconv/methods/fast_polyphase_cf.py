"""``fast_polyphase_cf``: ``fast_polyphase`` in the caller's channels-first layout.

The same sub-pixel phases and one GEMM per phase, but the gradient stays ``(N, C_out, *out)``
and the GEMM is turned around so that its result is already channels-first::

    x_phase[n, c, m] = sum_{t, o} w[o, c, taps[T-1-t]] * y_padded[n, o, m + t*d']
                       (C_in/g, T*C_out/g) @ (T*C_out/g, M)      per sample and group

No layout copy of the gradient or of the output; the GEMMs are wide in the spatial dim and
narrow in the batch. Large outputs run two phases at a time in threads (phases write disjoint
cells), so that the gathers and strided writes, single-threaded in NumPy, use both cores.
That pays when the gradient has many cells per channel (upsampling decoders, long 1-d
signals, depthwise layers); with few cells and many channels the single large GEMM of
``fast_gemm`` wins. Extra memory: one phase's gather, as ``fast_polyphase``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._arrays import pad_or_crop
from .._threads import pool
from ..spec import ConvSpec
from .fast_polyphase import (VIEW_BYTES, padded_once, padded_size, shifted_views,
                             sub_kernel_matrix)
from .polyphase import empty, largest, phases, table


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    n, g = spec.batch, spec.groups
    co = spec.out_channels // g
    x = np.zeros(spec.input_shape, dtype=np.result_type(y, w))
    per_dim = [phases(spec, dim) for dim in range(spec.ndim)]
    most = padded_once(per_dim)
    padded = pad_or_crop(y, most)                                        # (N, C_out, *out')

    def phase(combo) -> None:
        if empty(combo):
            return                                                       # stays zero
        counts = tuple(ph.count for ph in combo)
        views = shifted_views(padded, combo, most, lead=2)
        taps, cells = len(views), math.prod(counts)
        gathered = views[0][:, None] if taps == 1 else np.stack(views, axis=1)  # (N, T, C, *M)
        gathered = gathered.reshape(n, taps, g, co, cells).transpose(0, 2, 1, 3, 4).reshape(
            n, g, taps * co, cells)                                      # (N, g, T*co, M)
        kernel = np.swapaxes(sub_kernel_matrix(w, [ph.taps for ph in combo], g), 1, 2)
        part = kernel @ gathered                                         # (N, g, ci, M)
        where = tuple(ph.cells(s) for ph, s in zip(combo, spec.stride))
        x[(slice(None),) * 2 + where] = part.reshape((n, spec.in_channels) + counts)

    combos = list(itertools.product(*per_dim))
    if len(combos) > 1 and x.size >= _THREADED_SIZE:
        # phases write disjoint cells; NumPy releases the GIL in the gathers, the GEMMs and
        # the strided writes, so two phases at a time use both cores for the memory passes
        list(pool().map(phase, combos))
    else:
        for combo in combos:
            phase(combo)
    return x


#: Outputs smaller than this run their phases one after another (threads cost more).
_THREADED_SIZE = 1 << 18


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the once-padded gradient,
    and per running phase (two in threads on large outputs) its gather twice (stacked,
    regrouped), its sub-kernel twice and its product, and the list of its shifted views."""
    n, g, co, ci = spec.batch, spec.groups, spec.out_channels, spec.in_channels
    taps, cells, _ = largest(spec)
    combos = math.prod(len(table(spec, dim)) for dim in range(spec.ndim))
    running = 2 if combos > 1 and math.prod(spec.input_shape) >= _THREADED_SIZE else 1
    phase = 2 * n * taps * co * cells + n * ci * cells + 2 * co * ci // g * taps
    return itemsize * (n * co * padded_size(spec) + running * phase) + VIEW_BYTES * taps
