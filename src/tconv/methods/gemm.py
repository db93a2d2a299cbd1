"""``gemm``: one matrix product to columns, then col2im, as the frameworks' fallback paths do.

1. GEMM: per group, ``cols = w.T @ y`` turns each input cell's channel vector into the kernel-sized
   patch it contributes: ``(C_in/g * prod(k), C_out/g) @ (C_out/g, prod(out))``.
2. col2im: for each kernel tap ``j``, add that tap's row of patches into the full result at the
   strided positions ``p*stride + j*dilation``; overlapping patches add up.
3. Crop the forward padding (output_padding extends the high side).

No multiply touches an inserted zero; col2im is ``prod(k)`` strided additions.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..spec import ConvSpec


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    n, g = spec.batch, spec.groups
    co = spec.out_channels // g
    k = spec.kernel_size
    positions = int(np.prod(spec.output_size))
    wt = w.reshape(g, co, -1).swapaxes(1, 2)          # (g, C_in/g * prod(k), C_out/g)
    cols = wt @ y.reshape(n, g, co, positions)        # (N, g, C_in/g * prod(k), P)
    # (N, C_in, K, *out)
    cols = cols.reshape((n, spec.in_channels, int(np.prod(k))) + spec.output_size)
    full = np.zeros((n, spec.in_channels) + spec.canvas_size, dtype=cols.dtype)
    for flat, tap in enumerate(itertools.product(*map(range, k))):
        full[(slice(None),) * 2 + spec.tap_window(tap)] += cols[:, :, flat]
    return full[(slice(None),) * 2 + spec.input_window]


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the columns
    ``N*C_in*prod(k)*prod(out)`` and the canvas they are added on (the result is a window)."""
    cols = spec.batch * spec.in_channels * math.prod(spec.kernel_size) * math.prod(
        spec.output_size)
    return itemsize * (cols + spec.batch * spec.in_channels * math.prod(spec.canvas_size))
