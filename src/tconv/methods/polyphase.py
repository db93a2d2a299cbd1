"""``polyphase``: up to ``stride**d`` small convolutions on sub-kernels, interleaved (sub-pixel).

In full (uncropped) coordinates the scatter puts ``y[i] * w[j]`` at ``u = i*stride + j*dilation``.
Split the output by phase ``r = u mod stride``. A cell of phase ``r`` only receives taps with
``j*dilation = r (mod stride)``; those taps form the sub-kernel ``j0, j0 + stride/g, ...`` with
``g = gcd(stride, dilation)``, and for ``u = m*stride + r``::

    x_full[m*stride + r] = sum_t y[m - c0 - t * dilation/g] * w[j0 + t * stride/g],
    c0 = (j0*dilation - r) / stride,

an ordinary stride-1 transposed convolution of ``y`` with a sub-kernel of dilation
``dilation/g``, computed here as a correlation with the flipped sub-kernel. Each phase is one
small convolution; the phases interleave into ``x``. Nothing multiplies an inserted zero: the
work is ``1/stride**d`` of ``zero_insertion``'s. Only the phases a tap reaches and that have
cells are visited (:func:`phases`): a stride far larger than the kernel costs nothing.
"""
from __future__ import annotations

import functools
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

    taps: range             # kernel taps j0, j0 + stride/g, ... feeding this phase
    dilation: int           # dilation of the sub-kernel, dilation / g
    start: int              # first output cell of this phase (cropped coordinates)
    count: int              # number of output cells of this phase
    pad: tuple[int, int]    # padding (negative: crop) of y for the correlation

    def cells(self, stride: int) -> slice:
        """The output cells of this phase (cropped coordinates), every ``stride``-th one."""
        return slice(self.start, self.start + (self.count - 1) * stride + 1, stride)


@dataclass(frozen=True)
class Table:
    """The phases of one dim as arrays (one entry per phase, by residue): what the memory
    estimates and the cost model read without building a :class:`Phase` per residue."""

    first_tap: np.ndarray   # j0 of each phase (its taps: j0, j0 + step, ...)
    taps: np.ndarray        # T, the number of taps (0: no tap reaches the phase)
    start: np.ndarray
    count: np.ndarray
    pad_low: np.ndarray
    pad_high: np.ndarray
    step: int               # stride / g between the taps of a phase
    dilation: int           # dilation / g of the sub-kernels

    def __len__(self) -> int:
        return len(self.taps)


def empty(combo) -> bool:
    """A combination of per-dim phases with no tap reaching it or no cell in it (stays 0)."""
    return any(not ph.taps or ph.count == 0 for ph in combo)


def phases(spec: ConvSpec, dim: int, *, tapless: bool = False) -> tuple[Phase, ...]:
    """The phases of spatial dim ``dim`` that a kernel tap reaches and that have output cells,
    in the order of their residue ``r``; with ``tapless``, every phase with cells instead, the
    ones no tap reaches included (with no taps: their cells stay 0).

    Only those are visited, never all ``stride`` residues: tap ``j`` feeds residue
    ``j*dilation mod stride``, which repeats with period ``stride/g`` in ``j`` (``g =
    gcd(stride, dilation)``), so the first ``min(kernel, stride/g)`` taps start one phase each
    and the others follow every ``stride/g``; and the cells of ``x`` fall on residues
    ``(q + pad_low) mod stride``, at most ``input_size`` distinct ones. The work is
    ``O(min(kernel, stride))`` (``O(min(input_size, stride))`` with ``tapless``), whatever the
    stride; see :func:`table`.
    """
    return _phases(spec, dim, tapless)


@functools.lru_cache(maxsize=8)
def _phases(spec: ConvSpec, dim: int, tapless: bool) -> tuple[Phase, ...]:
    t = table(spec, dim, tapless=tapless)
    return tuple(Phase(range(j0, j0 + n * t.step, t.step), t.dilation, start, count, (lo, hi))
                 for j0, n, start, count, lo, hi in zip(
                     t.first_tap.tolist(), t.taps.tolist(), t.start.tolist(),
                     t.count.tolist(), t.pad_low.tolist(), t.pad_high.tolist()))


@functools.lru_cache(maxsize=8)
def table(spec: ConvSpec, dim: int, *, tapless: bool = False) -> Table:
    """:func:`phases` as arrays, computed in NumPy (int64, or Python integers where a product
    could leave int64); kept (read-only) for the last few specs: the method, its memory
    estimate and the cost model all ask for them."""
    s, d, k = spec.stride[dim], spec.dilation[dim], spec.kernel_size[dim]
    lo, size, out = spec.padding[dim][0], spec.input_size[dim], spec.output_size[dim]
    g = math.gcd(s, d)
    step = s // g
    wide = max(k * d, size + lo + s + out + k * d, s * step if tapless else 0) >= 2**62
    dtype = object if wide else np.int64

    def ints(values) -> np.ndarray:
        return np.array(values, dtype=dtype) if wide else np.asarray(values, dtype=dtype)

    if tapless:       # the residues of x's cells; their first tap by the inverse of d/g
        r = ints(sorted({(q + lo) % s for q in range(min(size, s))}))
        reached = r % g == 0
        inverse = pow(d // g, -1, step) if step > 1 else 0
        j0 = np.where(reached, (r // g) * inverse % step, k)
    else:             # the first tap of every residue a tap reaches, by residue
        j0 = ints(range(min(k, step)))
        r = j0 * d % s
        order = np.argsort(r, kind="stable")
        j0, r = j0[order], r[order]
    taps = np.where(j0 < k, (k - 1 - j0) // step + 1, 0)
    m_first = -((r - lo) // s)                     # first m with m*s + r >= pad_low
    m_last = (size - 1 + lo - r) // s              # last m with m*s + r - pad_low < size
    count = m_last - m_first + 1
    keep = count > 0
    j0, r, taps, m_first, count = j0[keep], r[keep], taps[keep], m_first[keep], count[keep]
    spread = np.maximum(taps - 1, 0) * (d // g)
    low = (j0 * d - r) // s + spread - m_first
    tapped = taps > 0
    columns = [np.where(tapped, j0, 0), taps, m_first * s + r - lo, count,
               np.where(tapped, low, 0), np.where(tapped, count + spread - out - low, 0)]
    for column in columns:
        column.flags.writeable = False      # shared by every caller through the cache
    return Table(*columns, step, d // g)


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


def largest(spec: ConvSpec) -> tuple[int, int, int]:
    """``(taps, cells, padded)`` bounding every phase combination: its sub-kernel taps, its
    output cells and the spatial size of its padded gradient, each the largest of its dim's
    phases multiplied over the dims (all 0 when no tap reaches a cell)."""
    taps = cells = padded = 1
    for dim in range(spec.ndim):
        t = table(spec, dim)
        if not len(t):
            return 0, 0, 0
        taps *= int(t.taps.max())
        cells *= int(t.count.max())
        padded *= spec.output_size[dim] + int((np.maximum(t.pad_low, 0)
                                               + np.maximum(t.pad_high, 0)).max())
    return taps, cells, padded


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result, for the largest phase (and
    what the previous one still holds): its sub-kernel twice (taken, flipped and swapped), its
    padded gradient twice (padded, copied when a crop is reshaped), one tap's patch, the
    correlation and its product."""
    n, co, ci = spec.batch, spec.out_channels, spec.in_channels
    taps, cells, padded = largest(spec)
    sub = co * ci // spec.groups * taps
    return itemsize * (2 * sub + 2 * n * co * padded + n * co * cells + 3 * n * ci * cells)
