"""``zero_insertion``: the transposed convolution as a plain convolution of the stretched gradient.

The experiment's "backward conv 2". Per spatial dim, with ``K = dilation*(k-1) + 1``:

1. insert ``stride - 1`` zeros between neighbouring cells of ``y`` (length ``(out-1)*stride + 1``);
2. pad ``K - 1 - pad_low`` zeros low and ``K - 1 - pad_high + output_padding`` high (a negative
   amount crops: the forward padding was wider than the kernel);
3. flip the kernel in every spatial dim and swap its two channel axes within each group;
4. run an ordinary stride-1 convolution with the same dilation.

Why it works: the scatter puts ``y[i] * w[j]`` at ``x[i*stride + j*dilation - pad_low]``. Reading
that sum from the output's side, ``x[q]`` collects ``w[j]`` times the stretched ``y`` at
``q + pad_low - j*dilation``, a correlation with the flipped kernel once the stretched ``y`` is
shifted by ``K - 1 - pad_low``. It multiplies every inserted zero: ``stride**d`` times the
useful work.
"""
from __future__ import annotations

import math

import numpy as np

from .._arrays import flip_spatial, insert_zeros, pad_or_crop, swap_group_channels
from .direct import correlate
from ..spec import ConvSpec


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    stretched = pad_or_crop(insert_zeros(y, spec.stride), spec.transpose_padding)
    kernel = swap_group_channels(flip_spatial(w), spec.groups)  # (C_in, C_out/g, *k)
    return correlate(stretched, kernel, spec.input_size, (1,) * spec.ndim, spec.dilation,
                     spec.groups)


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result: the stretched gradient, its
    padded copy (twice: a crop is copied again when reshaped), the swapped kernel, and one
    tap's patch with its product."""
    n, co, ci = spec.batch, spec.out_channels, spec.in_channels
    stretched = math.prod((o - 1) * s + 1 for o, s in zip(spec.output_size, spec.stride))
    padded = math.prod((o - 1) * s + 1 + max(lo, 0) + max(hi, 0) for o, s, (lo, hi) in
                       zip(spec.output_size, spec.stride, spec.transpose_padding))
    cells = math.prod(spec.input_size)
    return itemsize * (n * co * (stretched + 2 * padded) + math.prod(spec.weight_shape)
                       + n * (co + ci) * cells)
