"""``fast_polyphase``: ``polyphase``'s sub-pixel decomposition, one GEMM per phase, channels last.

For each of the (at most ``prod(stride)``) phases a tap reaches (see
:func:`tconv.methods.polyphase.phases`), the cells of that phase are an ordinary stride-1
correlation of the gradient with a flipped sub-kernel of ``T`` taps. Gathering the ``T``
shifted views of the channels-last gradient side by side (im2col) makes that one matrix
product::

    x_phase[(n, m), c] = sum_{t, o} y_padded[n, m + t*d', o] * w[o, c, taps[T-1-t]]
                         (N*M, T*C_out) @ (T*C_out, C_in)

whose rows are written straight into the phase's strided cells of the output. Every multiply is
useful (``1/prod(stride)`` of ``zero_insertion``'s), nothing is added twice, and when the stride
equals the kernel (``T == 1``) there is no gather at all.

Extra memory: one phase's gather, ``N * prod(in / stride) * T * C_out`` elements (about the output
size times ``prod(kernel / stride)`` divided by ``prod(stride)``), plus channels-last copies of
``y`` and of the output.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._arrays import pad_or_crop
from ..spec import ConvSpec
from .polyphase import empty, largest, phases, table


def sub_kernel_matrix(w: np.ndarray, taps, groups: int) -> np.ndarray:
    """``(g, T*C_out/g, C_in/g)``: the phase's taps, flipped, tap-major then channel."""
    cy, ci = w.shape[:2]
    # a phase's taps are evenly spaced: a strided slice (cheap) rather than fancy indexing
    sub = w[(slice(None),) * 2 + tuple(
        slice(tp[0], tp[-1] + 1, tp[1] - tp[0] if len(tp) > 1 else 1) for tp in taps)]
    sub = sub[(slice(None),) * 2 + (slice(None, None, -1),) * len(taps)]   # flip the sub-kernel
    t = math.prod(len(tp) for tp in taps)
    sub = sub.reshape(groups, cy // groups, ci, t)                           # (g, co, ci, T)
    return np.moveaxis(sub, 3, 1).reshape(groups, t * (cy // groups), ci)


def padded_once(per_dim) -> list[tuple[int, int]]:
    """The gradient's padding per dim that serves every phase: the most any phase needs (a
    phase that needs less, or a crop, starts further in)."""
    return [(max([0, *(ph.pad[0] for ph in dim)]), max([0, *(ph.pad[1] for ph in dim)]))
            for dim in per_dim]


def shifted_views(padded: np.ndarray, combo, most, lead: int) -> list[np.ndarray]:
    """The ``T`` windows of the once-padded gradient that a phase's sub-kernel taps read.

    ``lead`` axes come before the spatial ones (1 channels-last, 2 channels-first); each view
    has the phase's cell counts as its spatial size.
    """
    starts = [low - ph.pad[0] for (low, _), ph in zip(most, combo)]
    return [padded[(slice(None),) * lead + tuple(
        slice(b + t * ph.dilation, b + t * ph.dilation + ph.count)
        for b, t, ph in zip(starts, shift, combo))]
        for shift in itertools.product(*[range(len(ph.taps)) for ph in combo])]


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    n, g = spec.batch, spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    x_last = np.zeros((n,) + spec.input_size + (g, ci), dtype=np.result_type(y, w))
    per_dim = [phases(spec, dim) for dim in range(spec.ndim)]
    most = padded_once(per_dim)
    padded = pad_or_crop(np.moveaxis(y, 1, -1), most, first_axis=1)       # (N, *out', C_out)
    for combo in itertools.product(*per_dim):
        if empty(combo):
            continue                                                     # stays zero
        counts = tuple(ph.count for ph in combo)
        views = shifted_views(padded, combo, most, lead=1)
        rows = n * math.prod(counts)
        gathered = views[0] if len(views) == 1 else np.stack(views, axis=-2)  # (N, *M, T, C)
        gathered = gathered.reshape(rows, len(views), g, co)
        kernel = sub_kernel_matrix(w, [ph.taps for ph in combo], g)     # (g, T*co, ci)
        if g == 1:
            part = (gathered.reshape(rows, len(views) * co) @ kernel[0])[:, None, :]
        else:
            lhs = np.moveaxis(gathered, 2, 0).reshape(g, rows, len(views) * co)
            part = np.moveaxis(lhs @ kernel, 0, 1)                       # (rows, g, ci)
        cells = tuple(ph.cells(s) for ph, s in zip(combo, spec.stride))
        x_last[(slice(None),) + cells] = part.reshape((n,) + counts + (g, ci))
    x = x_last.reshape((n,) + spec.input_size + (spec.in_channels,))
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


#: Bytes of one shifted view in a phase's list of them (the ndarray object, its slices).
VIEW_BYTES = 512


def gathered(spec: ConvSpec) -> int:
    """Elements the phases' gathers copy in all, ``N * C_out * sum(T * M)`` over the phase
    combinations (``T`` taps, ``M`` cells each): about ``N*prod(out)*K*C_out`` when the output
    is much larger than the kernel, up to ``(K/stride)**2`` per channel when it is not."""
    total = spec.batch * spec.out_channels
    for dim in range(spec.ndim):
        t = table(spec, dim)
        total *= int((t.taps * t.count).sum()) if len(t) else 0
    return total


def padded_size(spec: ConvSpec) -> int:
    """Spatial cells of the gradient padded once for every phase (:func:`padded_once`)."""
    size = 1
    for dim in range(spec.ndim):
        t = table(spec, dim)
        most = (max(0, int(t.pad_low.max())) + max(0, int(t.pad_high.max()))) if len(t) else 0
        size *= spec.output_size[dim] + most
    return size


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the channels-last output,
    the once-padded gradient, and for the largest phase (and what the previous one still
    holds) its gather twice (stacked, regrouped), its sub-kernel twice and its product twice,
    and the list of its shifted views."""
    n, g, co, ci = spec.batch, spec.groups, spec.out_channels, spec.in_channels
    taps, cells, _ = largest(spec)
    phase = 2 * n * cells * taps * co + 2 * n * cells * ci + 2 * co * ci // g * taps
    return (itemsize * (n * ci * math.prod(spec.input_size) + n * co * padded_size(spec)
                        + 2 * phase) + VIEW_BYTES * taps)
