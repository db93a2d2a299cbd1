"""tconv: the transposed convolution as the backward pass of a convolution, computed exactly.

Public API (PyTorch layouts, ``(N, C, *spatial)``, any number of spatial dims)::

    conv(x, w, *, stride, padding, dilation, groups, method)
    conv_transpose(y, w, *, stride, padding, output_padding, dilation, groups, output_size, method)
    conv_input_grad(input_shape, w, grad_output, *, stride, padding, dilation, groups, method)
    conv_weight_grad(x, weight_shape, grad_output, *, stride, padding, dilation, groups, method)
    METHODS (conv_transpose / conv_input_grad), CONV_METHODS (conv / conv_weight_grad),
    ConvSpec, ConvSpecError, dot_test
    MEMORY_LIMIT: bytes (int or "8G"); None: $TCONV_MEMORY_LIMIT or half of the machine's memory

Every computation estimates its peak memory first and refuses, with a ConvSpecError naming the
sizes, what exceeds the limit (:mod:`tconv.memory`); it is read at every call.
"""
from .methods import CONV_METHODS, METHODS
from .ops import conv, conv_input_grad, conv_transpose, conv_weight_grad
from .spec import ConvSpec, ConvSpecError
from .verify import dot_test

__all__ = ["conv", "conv_transpose", "conv_input_grad", "conv_weight_grad", "METHODS",
           "CONV_METHODS", "ConvSpec", "ConvSpecError", "dot_test", "MEMORY_LIMIT"]

#: The memory limit of every computation in bytes (an int, or a string such as ``"8G"``);
#: ``None``: ``$TCONV_MEMORY_LIMIT``, else half of the machine's memory (:mod:`tconv.memory`).
MEMORY_LIMIT = None
__version__ = "0.1.0"
