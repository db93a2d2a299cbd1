"""``polyphase``: ``stride**d`` small ordinary convolutions on sub-kernels, interleaved (sub-pixel).

In full (uncropped) coordinates the scatter puts ``y[i] * w[j]`` at ``u = i*stride + j*dilation``.
Split the output by phase ``r = u mod stride``. A cell of phase ``r`` only receives taps with
``j*dilation = r (mod stride)``; those taps form the sub-kernel ``j0, j0 + stride/g, ...`` with
``g = gcd(stride, dilation)``, and for ``u = m*stride + r``::

    x_full[m*stride + r] = sum_t y[m - c0 - t * dilation/g] * w[j0 + t * stride/g],
    c0 = (j0*dilation - r) / stride,

an ordinary stride-1 transposed convolution of ``y`` with a sub-kernel of dilation
``dilation/g``, computed here as a correlation with the flipped sub-kernel. Each phase is one
small convolution; the phases interleave into ``x``. Nothing multiplies an inserted zero: the
work is ``1/stride**d`` of ``zero_insertion``'s.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .._arrays import flip_spatial, pad_or_crop, swap_group_channels
from .direct import correlate
from ..spec import ConvSpec


@dataclass(frozen=True)
class Phase:
    """One phase of one spatial dim."""

    taps: tuple[int, ...]   # kernel taps j0, j0 + stride/g, ... feeding this phase
    dilation: int           # dilation of the sub-kernel, dilation / g
    start: int              # first output cell of this phase (cropped coordinates)
    count: int              # number of output cells of this phase
    pad: tuple[int, int]    # padding (negative: crop) of y for the correlation

    def cells(self, stride: int) -> slice:
        """The output cells of this phase (cropped coordinates), every ``stride``-th one."""
        return slice(self.start, self.start + (self.count - 1) * stride + 1, stride)


def empty(combo) -> bool:
    """A combination of per-dim phases with no tap reaching it or no cell in it (stays 0)."""
    return any(not ph.taps or ph.count == 0 for ph in combo)


def phases(spec: ConvSpec, dim: int) -> list[Phase]:
    """The ``stride`` phases of spatial dim ``dim`` (empty phases included, with no taps)."""
    s, d, k = spec.stride[dim], spec.dilation[dim], spec.kernel_size[dim]
    lo, size, out = spec.padding[dim][0], spec.input_size[dim], spec.output_size[dim]
    g = math.gcd(s, d)
    result = []
    for r in range(s):
        taps = tuple(j for j in range(k) if (j * d) % s == r)
        m_first = -(-(lo - r) // s)                 # first m with m*s + r >= pad_low
        m_last = (size - 1 + lo - r) // s           # last m with m*s + r - pad_low < size
        count = max(m_last - m_first + 1, 0)
        if taps:
            c_first = (taps[0] * d - r) // s
            c_last = c_first + (len(taps) - 1) * (d // g)
            low = c_last - m_first
            pad = (low, count + (len(taps) - 1) * (d // g) - out - low)
        else:
            pad = (0, 0)
        result.append(Phase(taps, d // g, m_first * s + r - lo, count, pad))
    return result


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    x = np.zeros(spec.input_shape, dtype=np.result_type(y, w))
    per_dim = [phases(spec, dim) for dim in range(spec.ndim)]
    for combo in itertools.product(*per_dim):
        if empty(combo):
            continue                                  # no tap reaches it, or no cell of it
        sub = w[np.ix_(range(w.shape[0]), range(w.shape[1]), *[ph.taps for ph in combo])]
        kernel = swap_group_channels(flip_spatial(sub), spec.groups)
        padded = pad_or_crop(y, [ph.pad for ph in combo])
        part = correlate(padded, kernel, tuple(ph.count for ph in combo), (1,) * spec.ndim,
                         tuple(ph.dilation for ph in combo), spec.groups)
        cells = tuple(ph.cells(s) for ph, s in zip(combo, spec.stride))
        x[(slice(None),) * 2 + cells] = part
    return x
