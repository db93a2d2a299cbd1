"""``commuted``: the same full convolution with the roles swapped.

The experiment's "backward conv 1": the (dilated) kernel is the signal and the zero-inserted,
flipped gradient is the filter. Per spatial dim, with ``G`` the zero-inserted ``y`` of length
``L = (out-1)*stride + 1`` and ``W`` the kernel with ``dilation - 1`` zeros between taps
(length ``K``), the scatter sum ``x[q] = sum_m W[m] * G[q + pad_low - m]`` is a convolution of ``W``
with ``G``. Convolution commutes, so it is also a correlation of ``W`` with the flipped ``G``::

    x[q] = sum_t flip(G)[t] * W_padded[q + t],

with ``W`` padded by ``L - 1 - pad_low`` low and ``in + pad_low - K`` high (negative: crop).

Channels: the kernel ``(C_out, C_in/g, *k)`` becomes a batch of ``C_in/g`` signals with ``C_out``
channels; the gradient ``(N, C_out, *out)`` becomes ``g * N`` filters of ``C_out/g`` channels each,
so that one grouped correlation gives ``(C_in/g, g*N, *in)``, which is ``x`` after a transpose.
"""
from __future__ import annotations

import math

import numpy as np

from .._arrays import flip_spatial, insert_zeros, pad_or_crop
from .direct import correlate
from ..spec import ConvSpec


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    n, g = spec.batch, spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    filt = flip_spatial(insert_zeros(y, spec.stride))                 # (N, C_out, *L)
    lengths = filt.shape[2:]
    filt = filt.reshape((n, g, co) + lengths).swapaxes(0, 1)           # (g, N, C_out/g, *L)
    filt = filt.reshape((g * n, co) + lengths)
    signal = insert_zeros(w, spec.dilation).swapaxes(0, 1)             # (C_in/g, C_out, *K)
    signal = pad_or_crop(signal, [
        (length - 1 - lo, size + lo - extent) for length, (lo, _), size, extent in
        zip(lengths, spec.padding, spec.input_size, spec.extents)])
    x = correlate(signal, filt, spec.input_size, (1,) * spec.ndim, (1,) * spec.ndim, g)
    x = x.reshape((ci, g, n) + spec.input_size)                       # (C_in/g, g, N, *in)
    return x.transpose((2, 1, 0) + tuple(range(3, 3 + spec.ndim))).reshape(spec.input_shape)


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the stretched gradient as
    filters (three copies: stretched, flipped, regrouped), the dilated kernel and its padded
    copy (twice; padded in full before the low side is cropped), one tap's patch, its product
    and the correlation before its transpose; and the short-lived objects of its loop, which
    runs over the ``prod(L)`` taps of the stretched gradient, not the kernel's (128 bytes a
    tap, as :data:`tconv.memory.PER_TAP`)."""
    n, g, co, ci = spec.batch, spec.groups, spec.out_channels, spec.in_channels
    lengths = [(o - 1) * s + 1 for o, s in zip(spec.output_size, spec.stride)]
    # padded before it is cropped: a low crop (pad_low > L - 1) leaves the high pad whole
    signal = math.prod(e + max(length - 1 - lo, 0) + max(size + lo - e, 0)
                       for length, size, e, (lo, _) in
                       zip(lengths, spec.input_size, spec.extents, spec.padding))
    cells = math.prod(spec.input_size)
    return (itemsize * (3 * n * co * math.prod(lengths) + co * ci // g * math.prod(spec.extents)
                        + 2 * ci // g * co * signal + ci // g * co * cells + 2 * n * ci * cells)
            + 128 * math.prod(lengths))
