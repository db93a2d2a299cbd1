"""The one way the tests compare a result with exact arithmetic.

``assert_exact(operation, a, b, spec, got)`` checks the shape, then every cell against tconv's
exact result (Python integers, rounded once): integers must be equal (wrapped modulo 2**bits as
NumPy's integers wrap), floats within the classic rounding bound of a sum of ``n`` products,
``gamma_n * (|a| op |b|) + (u + 2**-52) * |exact|`` with ``n`` the terms summed into one cell of
the operation and ``u`` the unit roundoff of the result's dtype.
"""
from __future__ import annotations

import math

import numpy as np

from tconv import exact
from tconv.methods import reference, scatter
from tconv.spec import ConvSpec
from tconv.verify import gamma, unit_roundoff

EXACT = {"conv_transpose": exact.conv_transpose, "conv": exact.conv,
         "weight_grad": exact.weight_grad}
NAIVE = {"conv_transpose": scatter.conv_transpose, "conv": reference.conv,
         "weight_grad": reference.weight_grad}


def terms(operation: str, spec: ConvSpec) -> int:
    """Products summed into one cell of the result of ``operation``."""
    return {"conv_transpose": spec.terms_per_output,
            "conv": spec.in_channels // spec.groups * math.prod(spec.kernel_size),
            "weight_grad": spec.batch * math.prod(spec.output_size)}[operation]


def bound(operation: str, a, b, spec: ConvSpec, truth: np.ndarray, dtype) -> np.ndarray:
    """Per-cell bound of ``|computed - exact|`` for ``operation`` computed in ``dtype``."""
    u = unit_roundoff(dtype)
    if u == 0:
        return np.zeros(truth.shape)
    magnitudes = NAIVE[operation](np.abs(np.asarray(a, np.float64)),
                                  np.abs(np.asarray(b, np.float64)), spec)
    return (gamma(terms(operation, spec), u) * magnitudes * (1 + 2.0**-40)
            + (u + 2.0**-52) * np.abs(truth.astype(np.float64)))


def assert_exact(operation: str, a, b, spec: ConvSpec, got, *, dtype=None, label: str = ""):
    """Assert that ``got`` is ``operation`` of ``(a, b)`` under ``spec``: ``(y, w)`` for
    conv_transpose, ``(x, w)`` for conv, ``(x, g)`` for weight_grad."""
    got = np.asarray(got)
    dtype = np.dtype(dtype if dtype is not None else np.result_type(np.asarray(a),
                                                                    np.asarray(b)))
    truth = EXACT[operation](a, b, spec)
    where = f"{label} {operation} of {spec.describe()}".strip()
    assert got.shape == truth.shape, f"{where}: shape {got.shape}, expected {truth.shape}"
    if dtype.kind in "iu":
        want = exact.wrap(truth, dtype)
        np.testing.assert_array_equal(got.astype(dtype), want, err_msg=where)
        return
    limit = bound(operation, a, b, spec, truth, dtype)
    diff = np.abs(got.astype(np.float64) - truth.astype(np.float64))
    bad = np.argwhere(~(diff <= limit))
    assert not len(bad), (f"{where}: {len(bad)} cells past the bound, first {tuple(bad[0])}: "
                          f"|diff| {diff[tuple(bad[0])]:.3g} > {limit[tuple(bad[0])]:.3g}")
