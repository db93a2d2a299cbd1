"""The public convolution functions: parse parameters into a ConvSpec once, then dispatch."""
from __future__ import annotations

import numpy as np

from . import cost, forward, im2col
from ._arrays import as_array, as_compute, result_dtype
from .algorithms import ALGORITHMS, METHODS, fast_native
from .spec import ConvSpec, ConvSpecError


#: The algorithms of the forward convolution and of the weight gradient (``"auto"`` excluded):
#: ``direct``, one matrix product per kernel tap (:mod:`tconv.forward`), ``im2col``, one
#: GEMM per cache-sized block of gathered windows (:mod:`tconv.im2col`), and, where its
#: extension built, ``fast_native``, the compiled kernel (:mod:`tconv.algorithms.fast_native`).
#: ``auto`` runs what :func:`tconv.cost.choose_conv` picks.
_FORWARD = {"direct": forward.conv, "im2col": im2col.conv}
_WEIGHT_GRAD = {"direct": forward.weight_grad, "im2col": im2col.weight_grad}
if fast_native.AVAILABLE:
    _FORWARD["fast_native"] = fast_native.conv
    _WEIGHT_GRAD["fast_native"] = fast_native.weight_grad
CONV_METHODS = tuple(_FORWARD)


def conv(x, w, *, stride=1, padding=0, dilation=1, groups=1, method="auto") -> np.ndarray:
    """N-d convolution (cross-correlation), as ``torch.nn.functional.conv{1,2,3}d`` without bias.

    Parameters
    ----------
    x : array_like, ``(N, C_in, *spatial)``
    w : array_like, ``(C_out, C_in / groups, *kernel)``
    stride, dilation : int or sequence of int
    padding : int, sequence of int, sequence of (low, high) pairs, ``"valid"`` or ``"same"``
    groups : int
    method : str
        ``"auto"`` or one of :data:`CONV_METHODS`; every method gives the same numbers up to
        float rounding (integers: exactly).

    Returns
    -------
    ndarray ``(N, C_out, *out)`` in the promoted dtype of ``x`` and ``w``, with
    ``out = floor((in + pad_low + pad_high - dilation*(k-1) - 1) / stride) + 1``.

    Examples
    --------
    >>> import numpy as np, tconv
    >>> tconv.conv(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=2, padding=1)[0, 0]
    array([[4., 6.],
           [6., 9.]])
    """
    x, w = as_array("x", x), as_array("w", w)
    _check_conv_method(method)
    spec = ConvSpec.forward(x.shape, w.shape, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
    return convolve(x, w, spec, method)


def conv_transpose(y, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                   output_size=None, method="auto") -> np.ndarray:
    """N-d transposed convolution: the input gradient of :func:`conv`, as ``F.conv_transpose{1,2,3}d``.

    Parameters
    ----------
    y : array_like, ``(N, C_in, *spatial)``
    w : array_like, ``(C_in, C_out / groups, *kernel)`` (the forward weight of the matching conv)
    stride, dilation : int or sequence of int
    padding : int, sequence of int, sequence of (low, high) pairs, ``"valid"`` or ``"same"``
        The padding of the matching forward convolution; it crops the full result.
    output_padding : int or sequence of int
        Extra cells on the high side, ``0 <= output_padding < max(stride, dilation)``.
    output_size : sequence of int, optional
        Spatial size (or full shape) of the result; chooses ``output_padding``.
    method : str
        ``"auto"`` (one of the fast methods, chosen by the shape, see :mod:`tconv.cost`) or one
        of :data:`tconv.METHODS`; every method gives the same numbers up to float rounding
        (integers: exactly).

    Returns
    -------
    ndarray ``(N, C_out, *out)`` with
    ``out = (in - 1)*stride - pad_low - pad_high + dilation*(k-1) + 1 + output_padding``.

    Examples
    --------
    >>> import numpy as np, tconv
    >>> tconv.conv_transpose(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), stride=2, padding=1,
    ...                      output_padding=1)[0, 0]
    array([[1., 2., 1., 1.],
           [2., 4., 2., 2.],
           [1., 2., 1., 1.],
           [1., 2., 1., 1.]])
    """
    y, w = as_array("y", y), as_array("w", w)
    _check_method(method)
    spec = ConvSpec.transpose(y.shape, w.shape, stride=stride, padding=padding,
                              output_padding=output_padding, dilation=dilation, groups=groups,
                              output_size=output_size)
    return transpose(y, w, spec, method)


def transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec, method: str = "auto") -> np.ndarray:
    """Run one algorithm for a built ``spec``: ``y`` is ``spec.output_shape``; the result is
    ``spec.input_shape`` in the promoted dtype of ``y`` and ``w``."""
    _check_method(method)
    dtype = result_dtype(y, w)
    return _run(ALGORITHMS[cost.choose(spec, dtype) if method == "auto" else method], y, w, spec)


def convolve(x: np.ndarray, w: np.ndarray, spec: ConvSpec, method: str = "auto") -> np.ndarray:
    """The forward convolution of a built ``spec`` (``x`` is ``spec.input_shape``)."""
    _check_conv_method(method)
    if method == "auto":
        method = cost.choose_conv(spec, result_dtype(x, w), "conv")
    return _run(_FORWARD[method], x, w, spec)


def weight_grad(x: np.ndarray, g: np.ndarray, spec: ConvSpec, method: str = "auto") -> np.ndarray:
    """``dL/dw`` of a built ``spec`` for upstream gradient ``g`` (``spec.output_shape``)."""
    _check_conv_method(method)
    if method == "auto":
        method = cost.choose_conv(spec, result_dtype(x, g), "weight_grad")
    return _run(_WEIGHT_GRAD[method], x, g, spec)


def _run(algorithm, a: np.ndarray, b: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``algorithm(a, b, spec)`` in the compute dtype, returned in the operands' dtype."""
    dtype = result_dtype(a, b)
    return algorithm(as_compute(a, dtype), as_compute(b, dtype), spec).astype(dtype, copy=False)


def _check_native(method) -> None:
    if method == "fast_native" and not fast_native.AVAILABLE:
        raise ConvSpecError("method='fast_native' needs the compiled extension tconv._native, "
                            "which is not built in this install (no C compiler at install "
                            "time); method='auto' runs the NumPy methods")


def _check_method(method) -> None:
    _check_native(method)
    if not isinstance(method, str) or (method != "auto" and method not in ALGORITHMS):
        raise ConvSpecError(f"method={method!r} is not one of {('auto',) + METHODS}")


def _check_conv_method(method) -> None:
    _check_native(method)
    if not isinstance(method, str) or (method != "auto" and method not in CONV_METHODS):
        raise ConvSpecError(f"method={method!r} is not one of {('auto',) + CONV_METHODS}")
