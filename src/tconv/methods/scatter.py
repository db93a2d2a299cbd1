"""``scatter``: the definition of the transposed convolution, and the reference of every method.

Every input cell adds a copy of the kernel, scaled by its value, into the output. The copy for
input position ``p`` lands on the window ``p*stride + j*dilation`` of the full (uncropped)
result, exactly the cells the forward convolution read to produce ``y[p]``; the full result is
then cropped by the forward padding (and output_padding extends it on the high side). The part
of a copy that the crop would remove is never added: each copy is cut to ``x`` first
(:meth:`~tconv.spec.ConvSpec.stamp`), so the memory is that of ``x``, not of the uncropped
result (a stride of 10**9 with its padding would make that gigabytes).

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
    ``o``, ``j`` (landing inside ``x``) and every ``c`` of ``o``'s group."""
    g, ci, co = spec.groups, spec.in_channels // spec.groups, spec.out_channels // spec.groups
    x = zeros(spec.input_shape, y, w)
    for p in np.ndindex(*spec.output_size):
        inside = spec.stamp(p)
        if inside is None:
            continue                          # every copy of this cell falls into the padding
        taps, cells = inside
        for group in range(g):
            kernel = w[(slice(group * co, (group + 1) * co), slice(None)) + taps]
            stamp = y[(slice(None), slice(group * co, (group + 1) * co)) + p] @ kernel.reshape(
                co, -1)
            x[(slice(None), slice(group * ci, (group + 1) * ci)) + cells] += stamp.reshape(
                (spec.batch, ci) + kernel.shape[2:])
    return x


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: one stamp, its product and
    its kernel (copied when cut)."""
    g = spec.groups
    taps = math.prod(spec.kernel_size)
    stamp = spec.batch * spec.in_channels // g * taps
    return itemsize * (2 * stamp + spec.out_channels // g * spec.in_channels // g * taps)
