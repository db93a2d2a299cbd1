"""Both gradients of the convolution, as convolutions (no autograd).

For ``y = conv(x, w)`` and an upstream gradient ``g = dL/dy``:

* the input gradient ``dL/dx`` is the transposed convolution of ``g`` with the same ``w``;
  the forward floor decides the output_padding (``ConvSpec.output_padding``);
* the weight gradient is a correlation of the padded input with ``g`` as the filter, with the
  roles of stride and dilation exchanged::

      dw[o, i, j] = sum_{n, p} x_padded[n, g*C_in/g + i, j*dilation + p*stride] * g[n, o, p]
"""
from __future__ import annotations

import numpy as np

from . import core
from ._arrays import as_array
from .spec import ConvSpec, ConvSpecError


def _check_grad_output(grad_output: np.ndarray, spec: ConvSpec) -> None:
    if grad_output.shape != spec.output_shape:
        raise ConvSpecError(
            f"grad_output shape {grad_output.shape} does not match the convolution's output "
            f"shape {spec.output_shape} ({spec.describe()})")


def conv_input_grad(input_shape, w, grad_output, *, stride=1, padding=0, dilation=1, groups=1,
                    method="auto") -> np.ndarray:
    """``dL/dx`` of ``y = conv(x, w)`` for ``x.shape == input_shape``, given ``dL/dy``.

    Same argument order as ``torch.nn.grad.conv2d_input``; any number of spatial dims.

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
    return core.transpose(grad_output, w, spec, method)


def conv_weight_grad(x, weight_shape, grad_output, *, stride=1, padding=0, dilation=1,
                     groups=1, method="auto") -> np.ndarray:
    """``dL/dw`` of ``y = conv(x, w)`` for ``w.shape == weight_shape``, given ``dL/dy``.

    Same argument order as ``torch.nn.grad.conv2d_weight``; any number of spatial dims.
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
    return core.weight_grad(x, grad_output, spec, method)

