"""``scatter``: the definition of the transposed convolution, and the reference of every method.

Every input cell adds a copy of the kernel, scaled by its value, into the output. The copy for
input position ``p`` lands on the window ``p*stride + j*dilation`` of the full (uncropped)
result, exactly the cells the forward convolution read to produce ``y[p]``; the full result is
then cropped by the forward padding (and output_padding extends it on the high side).

It loops over positions one at a time, like the naive loops of :mod:`.reference`, and works for
any dtype NumPy can multiply and add, ``object`` arrays of Python integers included (which is how
:mod:`tconv.exact` computes exact results).
"""
from __future__ import annotations

import math

import numpy as np

from ..spec import ConvSpec
from .reference import zeros


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``x[n, c, p*stride + j*dilation - pad_low] += y[n, o, p] * w[o, c, j]`` for every ``p``,
    ``o``, ``j`` and every ``c`` of ``o``'s group."""
    g, ci, co = spec.groups, spec.in_channels // spec.groups, spec.out_channels // spec.groups
    full = zeros((spec.batch, spec.in_channels) + spec.canvas_size, y, w)
    for p in np.ndindex(*spec.output_size):
        window = spec.window(p)
        for group in range(g):
            kernel = w[group * co:(group + 1) * co]
            stamp = y[(slice(None), slice(group * co, (group + 1) * co)) + p] @ kernel.reshape(
                co, -1)
            full[(slice(None), slice(group * ci, (group + 1) * ci)) + window] += stamp.reshape(
                (spec.batch, ci) + spec.kernel_size)
    return full[(slice(None),) * 2 + spec.input_window]


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the canvas the copies land on
    (the result is a window of it) and one stamp with its product."""
    stamp = spec.batch * spec.in_channels // spec.groups * math.prod(spec.kernel_size)
    return itemsize * (spec.batch * spec.in_channels * math.prod(spec.canvas_size) + 2 * stamp)
