"""NaN and infinities: the answer of the definition, for every method.

Every operation of tconv is a sum of products ``a[i] * b[j]`` over an incidence fixed by the
spec, and its definition says which products a cell sums:

``conv_transpose``
    the scatter: ``x[i*stride + j*dilation - pad_low] += y[i] * w[j]`` (per channel pair of a
    group). Padding and inserted zeros are not multiplied: they are not part of the sum.
``conv`` and ``weight_grad``
    the naive loops: ``out[p] = sum_j x_padded[p*stride + j*dilation] * w[j]`` and
    ``dw[j] = sum_p x_padded[p*stride + j*dilation] * g[p]``. The padding zeros *are* factors
    here, as PyTorch multiplies them too: ``conv1d(ones(3), [inf, 1, 1], padding=1)`` is
    ``[nan, inf, inf]`` (``0 * inf`` at the padded cell).

In IEEE arithmetic a cell is then NaN when one of its products is NaN (a NaN factor, or
``0 * inf``) or when its products include both ``+inf`` and ``-inf``; ``+inf`` (``-inf``) when
they include ``+inf`` (``-inf``) and neither of those; otherwise finite. The methods reach the
same sum by other routes — zero insertion multiplies the inserted zeros, polyphase methods the
padding of their phases, BLAS kernels may reorder — so on non-finite input they disagree with
the definition and with each other. :func:`tconv.ops.run` therefore runs every method on finite
data only, and places the non-finite cells here:

1. the finite part: the method on the operands with every NaN and infinity replaced by 0;
2. the non-finite cells: for each of the three kinds, integer transposed convolutions (or
   convolutions, weight gradients) of 0/1 indicator arrays count, per cell, the products of
   that kind its sum holds. ``nan`` counts the pairs (NaN, any) + (any, NaN) + (inf, 0) +
   (0, inf); ``+inf`` the pairs (+inf, > 0) + (-inf, < 0) + (finite > 0, +inf) +
   (finite < 0, -inf); ``-inf`` likewise with the signs crossed. For conv and weight_grad the
   indicators are taken of the padded input (its padding is zeros, and ``any`` covers it),
   with a padding-free spec.

Why it is exact. Integer convolutions are exact in every method (int64, tested bit for bit
against the scatter), the counts are sums of 0/1 products with no cancellation, so a count is
positive exactly when the sum holds such a product. And step 1 is right on every cell that
stays finite: a NaN or infinite operand makes *every* product it takes part in NaN or
infinite (``inf * 0`` is NaN), so it only ever reaches cells that step 2 overwrites; the
finite cells sum exactly the products they would have summed. Only the non-finite path pays
for this: finite input (one ``min`` and ``max`` per operand) runs the method as is.
"""
from __future__ import annotations

import numpy as np

from ._arrays import pad_or_crop
from .spec import ConvSpec


def finite(a: np.ndarray) -> bool:
    """Whether every value of ``a`` is finite, without allocating: the compiled scan of the
    bits where it applies (:func:`tconv.methods.fast_native.all_finite`), else ``min`` and
    ``max`` (NaN propagates through both)."""
    if a.dtype.kind not in "fc" or a.size == 0:
        return True
    from .methods import fast_native

    scanned = fast_native.all_finite(a)
    if scanned is not None:
        return scanned
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def indicator_spec(operation: str, spec: ConvSpec) -> ConvSpec:
    """The spec the indicator arrays run with: ``spec`` itself for the transposed convolution;
    for conv and weight_grad the same convolution of the already padded input (padding 0)."""
    if operation == "conv_transpose":
        return spec
    return ConvSpec.forward(spec.input_shape[:2] + spec.padded_input_size, spec.weight_shape,
                            stride=spec.stride, dilation=spec.dilation, groups=spec.groups,
                            output_padding=spec.output_padding)


def extra_bytes(operation: str, spec: ConvSpec, a_size: int, b_size: int, result_size: int,
                itemsize: int) -> int:
    """Bytes :func:`place` holds beyond the method's own and the integer method's: the zeroed
    operands, the padded first operand, its and the second's kind masks and int64 indicators,
    three reached-masks, one count (int64) and its comparison of the result's size."""
    ispec = indicator_spec(operation, spec)
    padded = a_size if operation == "conv_transpose" else (
        ispec.batch * ispec.in_channels * int(np.prod(ispec.input_size, dtype=object)))
    masks = 10 * (padded + b_size)          # bool: the ten kinds of each operand
    return (itemsize * (a_size + b_size + padded) + masks + 2 * 8 * (padded + b_size)
            + 4 * result_size + 8 * result_size)


def _kinds(v: np.ndarray) -> dict[str, np.ndarray]:
    nan, inf, pos, neg = np.isnan(v), np.isinf(v), v > 0, v < 0
    return {"nan": nan, "any": np.ones(v.shape, dtype=bool), "inf": inf, "zero": v == 0,
            "pos": pos, "neg": neg, "pinf": inf & pos, "ninf": inf & neg,
            "pos_finite": pos & ~inf, "neg_finite": neg & ~inf}


#: Per kind of result, the (first operand, second operand) kinds whose products are of it.
PAIRS = {
    "nan": (("nan", "any"), ("any", "nan"), ("inf", "zero"), ("zero", "inf")),
    "pinf": (("pinf", "pos"), ("ninf", "neg"), ("pos_finite", "pinf"), ("neg_finite", "ninf")),
    "ninf": (("pinf", "neg"), ("ninf", "pos"), ("pos_finite", "ninf"), ("neg_finite", "pinf")),
}


def place(operation: str, method, a: np.ndarray, b: np.ndarray, spec: ConvSpec,
          count) -> np.ndarray:
    """``method(a, b, spec)`` with the NaN and infinities of the definition (module docstring).

    ``method`` is the chosen method's function (float operands), ``count`` an integer method of
    the same operation for :func:`indicator_spec`'s spec.
    """
    zeroed = [np.where(np.isfinite(v), v, 0).astype(v.dtype, copy=False) for v in (a, b)]
    result = method(zeroed[0], zeroed[1], spec)
    del zeroed
    ispec = indicator_spec(operation, spec)
    first = a if operation == "conv_transpose" else pad_or_crop(a, spec.padding)
    kinds_a, kinds_b = _kinds(first), _kinds(b)
    del first
    reached = {}
    for kind, pairs in PAIRS.items():
        hit = np.zeros(result.shape, dtype=bool)
        for ka, kb in pairs:
            ma, mb = kinds_a[ka], kinds_b[kb]
            if ma.any() and mb.any():
                hit |= count(ma.astype(np.int64), mb.astype(np.int64), ispec) > 0
        reached[kind] = hit
    result[reached["pinf"]] = np.inf
    result[reached["ninf"]] = -np.inf
    result[reached["nan"] | (reached["pinf"] & reached["ninf"])] = np.nan
    return result
