"""Naive, obviously correct loops: the forward convolution and its weight gradient (the
transposed convolution's is its definition, :mod:`.scatter`).

Both loop over positions one at a time and do nothing clever, so that each can be read against
its formula. They work for any dtype NumPy can multiply and add, ``object`` arrays of Python
integers included, which is how :mod:`tconv.exact` computes exact results.
"""
from __future__ import annotations

import math

import numpy as np

from ..spec import ConvSpec


def zeros(shape, *arrays) -> np.ndarray:
    """Zeros in the promoted dtype of ``arrays`` (``object`` too: Python integer zeros)."""
    dtype = np.result_type(*arrays)
    out = np.empty(shape, dtype=dtype)
    out[...] = 0
    return out


def _padded(x: np.ndarray, spec: ConvSpec, other: np.ndarray) -> np.ndarray:
    """``x`` inside a zero border of ``spec.padding`` (dtype promoted with ``other``)."""
    xp = zeros(spec.input_shape[:2] + spec.padded_input_size, x, other)
    xp[(slice(None),) * 2 + spec.input_window] = x
    return xp


def _patches(xp: np.ndarray, spec: ConvSpec):
    """Every output position ``p`` and group, with the window of the padded input the kernel
    covers there: ``(p, group, patch)``, ``patch`` of shape ``(N, C_in/groups, *kernel)``."""
    ci = spec.in_channels // spec.groups
    for p in np.ndindex(*spec.output_size):
        window = spec.window(p)
        for group in range(spec.groups):
            yield p, group, xp[(slice(None), slice(group * ci, (group + 1) * ci)) + window]


def conv(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Forward convolution: each output cell is the dot product of the kernel and its window.

    ``y[n, o, p] = sum_{i, j} x_padded[n, g*C_in/g + i, p*stride + j*dilation] * w[o, i, j]``,
    where ``g = o // (C_out / groups)`` is the group of output channel ``o``.
    """
    co = spec.out_channels // spec.groups
    y = zeros(spec.output_shape, x, w)
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
    dw = zeros(spec.weight_shape, x, g)
    for p, group, patch in _patches(_padded(x, spec, g), spec):
        grad = g[(slice(None), slice(group * co, (group + 1) * co)) + p]           # (N, co)
        flat = patch.reshape(spec.batch, math.prod(patch.shape[1:]))          # (N, ci*K)
        dw[group * co:(group + 1) * co] += (grad.T @ flat).reshape((co,) + patch.shape[1:])
    return dw
