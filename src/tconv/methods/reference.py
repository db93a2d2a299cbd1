"""Naive, obviously correct loops: the forward convolution, its weight gradient and the scatter
transpose.

All loop over positions one at a time and do nothing clever, so that each can be read against
its formula. They work for any dtype NumPy can multiply and add, ``object`` arrays of Python
integers included, which is how :mod:`tconv.exact` computes exact results.
"""
from __future__ import annotations

import math

import numpy as np

from ..spec import ConvSpec


def _zeros(shape, *arrays) -> np.ndarray:
    dtype = np.result_type(*arrays)
    out = np.empty(shape, dtype=dtype)
    out[...] = 0
    return out


def _window(position, spec: ConvSpec) -> tuple[slice, ...]:
    """The input cells a kernel placed at output ``position`` covers, in padded coordinates."""
    return tuple(slice(p * s, p * s + e, d) for p, s, e, d in
                 zip(position, spec.stride, spec.extents, spec.dilation))


def _padded(x: np.ndarray, spec: ConvSpec, other: np.ndarray) -> np.ndarray:
    """``x`` inside a zero border of ``spec.padding`` (dtype promoted with ``other``)."""
    xp = _zeros((spec.batch, spec.in_channels) + tuple(
        n + lo + hi for n, (lo, hi) in zip(spec.input_size, spec.padding)), x, other)
    xp[(slice(None),) * 2 + spec.input_window] = x
    return xp


def _patches(xp: np.ndarray, spec: ConvSpec):
    """Every output position ``p`` and group, with the window of the padded input the kernel
    covers there: ``(p, group, patch)``, ``patch`` of shape ``(N, C_in/groups, *kernel)``."""
    ci = spec.in_channels // spec.groups
    for p in np.ndindex(*spec.output_size):
        window = _window(p, spec)
        for group in range(spec.groups):
            yield p, group, xp[(slice(None), slice(group * ci, (group + 1) * ci)) + window]


def conv(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Forward convolution: each output cell is the dot product of the kernel and its window.

    ``y[n, o, p] = sum_{i, j} x_padded[n, g*C_in/g + i, p*stride + j*dilation] * w[o, i, j]``,
    where ``g = o // (C_out / groups)`` is the group of output channel ``o``.
    """
    co = spec.out_channels // spec.groups
    y = _zeros(spec.output_shape, x, w)
    for p, group, patch in _patches(_padded(x, spec, w), spec):
        kernel = w[group * co:(group + 1) * co]
        y[(slice(None), slice(group * co, (group + 1) * co)) + p] = (
            patch.reshape(spec.batch, kernel[0].size) @ kernel.reshape(co, -1).T)
    return y


def weight_grad(x: np.ndarray, g: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The weight gradient: every output position adds its input window, times its upstream
    gradient, into the kernel.

    ``dw[o, i, j] = sum_{n, p} x_padded[n, g*C_in/g + i, p*stride + j*dilation] * g[n, o, p]``
    (``g`` in the index is the group of output channel ``o``).
    """
    co = spec.out_channels // spec.groups
    dw = _zeros(spec.weight_shape, x, g)
    for p, group, patch in _patches(_padded(x, spec, g), spec):
        grad = g[(slice(None), slice(group * co, (group + 1) * co)) + p]           # (N, co)
        flat = patch.reshape(spec.batch, math.prod(patch.shape[1:]))          # (N, ci*K)
        dw[group * co:(group + 1) * co] += (grad.T @ flat).reshape((co,) + patch.shape[1:])
    return dw


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Scatter: every input cell adds a copy of the kernel, scaled by its value, into the output.

    The copy for input position ``p`` lands on the window ``p*stride + j*dilation`` of the full
    (uncropped) result, exactly the cells the forward convolution read to produce ``y[p]``; the
    full result is then cropped by the forward padding (and output_padding extends it on the high
    side). This is the definition of the transposed convolution and the reference for every
    other method.
    """
    g, ci, co = spec.groups, spec.in_channels // spec.groups, spec.out_channels // spec.groups
    full = _zeros((spec.batch, spec.in_channels) + tuple(
        n + op for n, op in zip(spec.full_output_size, spec.output_padding)), y, w)
    for p in np.ndindex(*spec.output_size):
        window = _window(p, spec)
        for group in range(g):
            kernel = w[group * co:(group + 1) * co]
            stamp = y[(slice(None), slice(group * co, (group + 1) * co)) + p] @ kernel.reshape(
                co, -1)
            full[(slice(None), slice(group * ci, (group + 1) * ci)) + window] += stamp.reshape(
                (spec.batch, ci) + spec.kernel_size)
    return full[(slice(None),) * 2 + spec.input_window]
