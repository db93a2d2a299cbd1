"""The public convolution functions: parse the parameters into a ConvSpec once, pick a method,
run it.

``conv``, ``conv_transpose``, ``conv_input_grad`` and ``conv_weight_grad`` take arrays and
framework-style parameters; :func:`run` (and its three named forms :func:`transpose`,
:func:`convolve`, :func:`weight_grad`) runs one operation on a built spec.
"""
from __future__ import annotations

import math

import numpy as np

from . import memory, methods, nonfinite
from ._arrays import as_array, compute_dtype, result_dtype
from .spec import ConvSpec, ConvSpecError


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
        ``"auto"`` or one of :data:`tconv.CONV_METHODS`; every method gives the same numbers up
        to float rounding (integers: exactly).

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
    methods.check("conv", method)
    spec = ConvSpec.forward(x.shape, w.shape, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
    return run("conv", x, w, spec, method)


def conv_transpose(y, w, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
                   output_size=None, method="auto") -> np.ndarray:
    """N-d transposed convolution: the input gradient of :func:`conv`, as ``F.conv_transposeNd``.

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
        ``"auto"`` (one of the fast methods, chosen by the shape, see :mod:`tconv.methods.auto`)
        or one of :data:`tconv.METHODS`; every method gives the same numbers up to float
        rounding (integers: exactly).

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
    methods.check("conv_transpose", method)
    spec = ConvSpec.transpose(y.shape, w.shape, stride=stride, padding=padding,
                              output_padding=output_padding, dilation=dilation, groups=groups,
                              output_size=output_size)
    return run("conv_transpose", y, w, spec, method)


def conv_input_grad(input_shape, w, grad_output, *, stride=1, padding=0, dilation=1, groups=1,
                    method="auto") -> np.ndarray:
    """``dL/dx`` of ``y = conv(x, w)`` for ``x.shape == input_shape``, given ``dL/dy``.

    Same argument order as ``torch.nn.grad.conv2d_input``; any number of spatial dims. It is
    the transposed convolution of ``grad_output``, with the output_padding the forward floor
    decided (``ConvSpec.output_padding``).

    Parameters
    ----------
    input_shape : sequence of int, ``(N, C_in, *spatial)``
    w : array_like, ``(C_out, C_in / groups, *kernel)``
    grad_output : array_like, ``(N, C_out, *out)``, the forward output's shape
    method : ``"auto"`` or one of :data:`tconv.METHODS`

    Examples
    --------
    >>> import numpy as np, tconv
    >>> tconv.conv_input_grad((1, 1, 4, 4), np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)),
    ...                       stride=2, padding=1)[0, 0]
    array([[1., 2., 1., 1.],
           [2., 4., 2., 2.],
           [1., 2., 1., 1.],
           [1., 2., 1., 1.]])
    """
    w, grad_output = as_array("w", w), as_array("grad_output", grad_output)
    spec = ConvSpec.forward(input_shape, w.shape, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
    _check_grad_output(grad_output, spec)
    return run("conv_transpose", grad_output, w, spec, method)


def conv_weight_grad(x, weight_shape, grad_output, *, stride=1, padding=0, dilation=1,
                     groups=1, method="auto") -> np.ndarray:
    """``dL/dw`` of ``y = conv(x, w)`` for ``w.shape == weight_shape``, given ``dL/dy``.

    Same argument order as ``torch.nn.grad.conv2d_weight``; any number of spatial dims. It is a
    correlation of the padded input with ``grad_output`` as the filter, the roles of stride and
    dilation exchanged::

        dw[o, i, j] = sum_{n, p} x_padded[n, g*C_in/g + i, j*dilation + p*stride] * g[n, o, p]

    The result has ``weight_shape`` and the promoted dtype of ``x`` and ``grad_output``.
    ``method`` is ``"auto"`` or one of :data:`tconv.CONV_METHODS`, as for :func:`tconv.conv`.

    Examples
    --------
    >>> import numpy as np, tconv
    >>> tconv.conv_weight_grad(np.ones((1, 1, 4, 4)), (1, 1, 3, 3), np.ones((1, 1, 2, 2)),
    ...                        stride=2, padding=1)[0, 0]
    array([[1., 2., 2.],
           [2., 4., 4.],
           [2., 4., 4.]])
    """
    x, grad_output = as_array("x", x), as_array("grad_output", grad_output)
    spec = ConvSpec.forward(x.shape, weight_shape, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
    _check_grad_output(grad_output, spec)
    return run("weight_grad", x, grad_output, spec, method)


def run(operation: str, a: np.ndarray, b: np.ndarray, spec: ConvSpec,
        method: str = "auto") -> np.ndarray:
    """One operation of a built ``spec`` by ``method`` (``"auto"``: the cost model's choice).

    ``a``, ``b`` are ``(y, w)`` for ``conv_transpose``, ``(x, w)`` for ``conv`` and ``(x, g)``
    for ``weight_grad``; they are computed in the accumulation dtype and the result is returned
    in their promoted dtype. Every computation passes through here, so two guarantees hold
    for every method:

    * memory: before anything is allocated, the result and the method's peak working memory
      are estimated (:func:`tconv.memory.need`; ``auto`` takes the first method of its
      preference that fits) and a computation above :func:`tconv.memory.limit` is refused with
      a ConvSpecError naming the sizes and the limit;
    * NaN and infinities: on finite operands the method runs as is; otherwise the answer is the
      definition's, the same for every method (:mod:`tconv.nonfinite`). A method that
      multiplies every product of the definition runs first when its result is smaller than
      its operands, and only a non-finite result sends the operands to that scan: a finite one
      proves every product finite (a pass over the result instead of over operands that can
      be several times larger).
    """
    methods.check(operation, method)
    dtype = result_dtype(a, b)
    compute = compute_dtype(dtype)
    need = memory.plan(operation, spec, method, a, b, dtype)
    chosen = methods.get(operation, need.method)
    ca, cb = (np.asarray(v).astype(compute, order="C", copy=False) for v in (a, b))
    if (chosen.sums_every_product(spec, compute)
            and math.prod(need.result_shape) < a.size + b.size):
        result = chosen.run(ca, cb, spec)
        if nonfinite.finite(result) or (nonfinite.finite(a) and nonfinite.finite(b)):
            return result.astype(dtype, copy=False)         # (or finite operands overflowed)
        del result
        finite = False
    else:
        finite = nonfinite.finite(a) and nonfinite.finite(b)
    if not finite:
        need = memory.plan(operation, spec, method, a, b, dtype, finite)
    fn = methods.get(operation, need.method).run
    a, b = ca, cb
    if finite:
        result = fn(a, b, spec)
    else:
        ispec = nonfinite.indicator_spec(operation, spec)
        count = methods.get(operation, memory.count_method(operation, ispec)).run
        result = nonfinite.place(operation, fn, a, b, spec, count)
    return result.astype(dtype, copy=False)


def transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec, method: str = "auto") -> np.ndarray:
    """The transposed convolution of a built ``spec``: ``y`` is ``spec.output_shape``, the
    result ``spec.input_shape``."""
    return run("conv_transpose", y, w, spec, method)


def convolve(x: np.ndarray, w: np.ndarray, spec: ConvSpec, method: str = "auto") -> np.ndarray:
    """The forward convolution of a built ``spec`` (``x`` is ``spec.input_shape``)."""
    return run("conv", x, w, spec, method)


def weight_grad(x: np.ndarray, g: np.ndarray, spec: ConvSpec, method: str = "auto") -> np.ndarray:
    """``dL/dw`` of a built ``spec`` for upstream gradient ``g`` (``spec.output_shape``)."""
    return run("weight_grad", x, g, spec, method)


def _check_grad_output(grad_output: np.ndarray, spec: ConvSpec) -> None:
    if grad_output.shape != spec.output_shape:
        raise ConvSpecError(
            f"grad_output shape {grad_output.shape} does not match the convolution's output "
            f"shape {spec.output_shape} ({spec.describe()})")
