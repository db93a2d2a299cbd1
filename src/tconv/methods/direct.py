"""``direct``: the forward convolution (cross-correlation) and its weight gradient, per tap.

N-d, grouped, strided and dilated. Pad, take a strided view per kernel tap, contract the
channels: for every tap ``j`` of the kernel, the input samples it meets form the strided slice
``x[..., j*d : j*d + s*(out-1) + 1 : s]``, and one matrix product per tap adds
``w[:, :, j] @ slice`` into the output (or ``g @ slice`` into the weight gradient's tap ``j``).
The loop runs over the ``prod(kernel)`` taps only; batch, channels and positions are vectorised.
The readable conv_transpose methods build on :func:`correlate`; the faster blocked GEMM of the
same products is :mod:`.im2col`.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .._arrays import pad_or_crop
from ..spec import ConvSpec


def correlate(x: np.ndarray, w: np.ndarray, out_size, stride, dilation,
              groups: int) -> np.ndarray:
    """``y[n, o, p] = sum_{i, j} x[n, g*C_in/g + i, p*stride + j*dilation] * w[o, i, j]``.

    ``x`` is ``(N, C_in, *size)`` and already padded; ``w`` is ``(C_out, C_in/groups, *k)``;
    the result is ``(N, C_out, *out_size)`` in the dtype of ``x`` and ``w`` multiplied.
    Taps read only in-range samples: ``out_size`` must not reach beyond ``x``.
    """
    n, c_in = x.shape[:2]
    c_out = w.shape[0]
    kernel = w.shape[2:]
    positions = int(np.prod(out_size, dtype=np.int64))
    xg = x.reshape((n, groups, c_in // groups) + x.shape[2:])        # (N, g, Ci/g, *size)
    wg = w.reshape((groups, c_out // groups, c_in // groups) + kernel)  # (g, Co/g, Ci/g, *k)
    out = np.zeros((n, groups, c_out // groups, positions), dtype=np.result_type(x, w))
    for tap in itertools.product(*map(range, kernel)):
        window = ConvSpec.tap_slices(tap, stride, dilation, out_size)
        patch = xg[(slice(None),) * 3 + window].reshape(n, groups, c_in // groups, positions)
        # (g, Co/g, Ci/g) @ (N, g, Ci/g, P)
        out += wg[(slice(None),) * 3 + tap] @ patch
    return out.reshape((n, c_out) + tuple(out_size))


def conv(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Forward convolution of ``spec`` (``x``, ``w`` already in the compute dtype): pad by
    ``spec.padding``, correlate."""
    return correlate(pad_or_crop(x, spec.padding), w, spec.output_size, spec.stride,
                     spec.dilation, spec.groups)


def weight_grad(x: np.ndarray, g: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The weight gradient of ``spec``'s convolution for upstream gradient ``g`` (both already
    in the compute dtype): the padded input correlated with ``g``, one product per tap."""
    n, groups = spec.batch, spec.groups
    co, ci = spec.out_channels // groups, spec.in_channels // groups
    positions = int(np.prod(spec.output_size))
    xp = pad_or_crop(x, spec.padding)
    xp = xp.reshape((n, groups, ci) + xp.shape[2:])
    gg = g.reshape(n, groups, co, positions).transpose(1, 2, 0, 3).reshape(
        groups, co, n * positions)                                     # (g, C_out/g, N*P)
    dw = np.zeros((groups, co, ci) + spec.kernel_size, dtype=np.result_type(x, g))
    for tap in itertools.product(*map(range, spec.kernel_size)):
        patch = xp[(slice(None),) * 3 + spec.tap_window(tap)]
        patch = patch.reshape(n, groups, ci, positions)
        patch = patch.transpose(1, 0, 3, 2).reshape(groups, n * positions, ci)
        dw[(slice(None),) * 3 + tap] = gg @ patch                      # (g, C_out/g, C_in/g)
    return dw.reshape(spec.weight_shape)


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the padded input and one
    tap's patch with its product (the weight gradient: the regrouped gradient and the patch
    twice, reshaped and transposed)."""
    n, co, ci = spec.batch, spec.out_channels, spec.in_channels
    padded = n * ci * math.prod(n_ + lo + hi for n_, (lo, hi) in
                                zip(spec.input_size, spec.padding))
    cells = math.prod(spec.output_size)
    if operation == "weight_grad":
        return itemsize * (padded + n * co * cells + 2 * n * ci * cells
                           + math.prod(spec.weight_shape))
    return itemsize * (padded + n * ci * cells + n * co * cells)
