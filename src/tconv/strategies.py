"""Hypothesis strategies for convolution specs, shared by the tests and the sweeps.

``conv_specs()`` draws only valid specs, built the way a transposed convolution is (from the
output size, output_padding included), so every draw is usable and shrinks towards the
smallest spec: 1 spatial dim, one channel, kernel 1, stride 1, no padding.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from .spec import ConvSpec


@st.composite
def conv_specs(draw, dims=(1, 2, 3), max_batch: int = 2, max_groups: int = 3,
               max_channels_per_group: int = 2, max_kernel: int = 4, max_stride: int = 3,
               max_dilation: int = 3, max_out: int = 4, max_padding: int = 4,
               output_padding: bool = True, symmetric: bool | None = None) -> ConvSpec:
    """A valid ConvSpec: any dims, groups, dilation, asymmetric padding, output_padding.

    ``symmetric=True`` draws the same padding on both sides of each dim (PyTorch's form),
    ``False`` any pair, ``None`` (default) either, half the time each.
    """
    ndim = draw(st.sampled_from(dims))
    per_dim = lambda lo, hi: tuple(draw(st.integers(lo, hi)) for _ in range(ndim))  # noqa: E731
    groups = draw(st.integers(1, max_groups))
    c_in = groups * draw(st.integers(1, max_channels_per_group))
    c_out = groups * draw(st.integers(1, max_channels_per_group))
    kernel = per_dim(1, max_kernel)
    stride = per_dim(1, max_stride)
    dilation = per_dim(1, max_dilation)
    out = per_dim(1, max_out)
    ops = tuple(draw(st.integers(0, max(s, d) - 1)) if output_padding else 0
                for s, d in zip(stride, dilation))
    if symmetric is None:
        symmetric = draw(st.booleans())
    pads = []
    for o, k, s, d, op in zip(out, kernel, stride, dilation, ops):
        room = ConvSpec.transposed_size(o, k, s, (0, 0), d, op) - 1  # keep >= 1 cell
        if symmetric:
            lo = hi = draw(st.integers(0, min(max_padding, room // 2)))
        else:
            lo = draw(st.integers(0, min(max_padding, room)))
            hi = draw(st.integers(0, min(max_padding, room - lo)))
        pads.append((lo, hi))
    batch = draw(st.integers(1, max_batch))
    return ConvSpec.transpose((batch, c_out) + out, (c_out, c_in // groups) + kernel,
                              stride=stride, padding=tuple(pads), output_padding=ops,
                              dilation=dilation, groups=groups)


def arrays_for(spec: ConvSpec, seed: int, dtype=np.int64):
    """``(x, w, y)`` of the spec's shapes: small integers, or normal floats for float dtypes."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)

    def draw(shape):
        if dtype.kind in "iu":
            return rng.integers(-5 if dtype.kind == "i" else 0, 6, size=shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    return draw(spec.input_shape), draw(spec.weight_shape), draw(spec.output_shape)
