"""The conv_transpose algorithms, one module each, all pure functions ``(y, w, spec) -> x``.

Each takes ``y`` and ``w`` already in the accumulation dtype (see :func:`tconv._arrays.compute_dtype`)
and returns an array of ``spec.input_shape`` in that dtype. Registration order is the order of
``tconv.METHODS``. ``fast_native`` is registered only where its compiled extension imports.
"""
from __future__ import annotations

from .. import reference
from . import (commuted, fast_gemm, fast_native, fast_polyphase, fast_polyphase_cf, gemm, matrix,
               polyphase, zero_insertion)

ALGORITHMS = {
    "scatter": reference.conv_transpose,
    "zero_insertion": zero_insertion.conv_transpose,
    "commuted": commuted.conv_transpose,
    "matrix": matrix.conv_transpose,
    "gemm": gemm.conv_transpose,
    "polyphase": polyphase.conv_transpose,
    "fast_gemm": fast_gemm.conv_transpose,
    "fast_polyphase": fast_polyphase.conv_transpose,
    "fast_polyphase_cf": fast_polyphase_cf.conv_transpose,
}
if fast_native.AVAILABLE:     # the compiled kernels, where the extension built
    ALGORITHMS["fast_native"] = fast_native.conv_transpose

METHODS: tuple[str, ...] = tuple(ALGORITHMS)
