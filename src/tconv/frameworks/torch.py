"""PyTorch: autograd, ``torch.nn.grad.conv{1,2,3}d_input`` and ``F.conv_transpose{1,2,3}d``.

PyTorch's layouts and meanings are tconv's, so the only conventions to translate are its limits:
convolutions of 1-3 spatial dims, symmetric integer padding in the gradient and transposed
functions (autograd can run behind an explicit ``F.pad``), and floating dtypes only.
"""
from __future__ import annotations

import numpy as np

from ..spec import ConvSpec
from . import NotExpressible

NAME = "torch"

_DTYPES = ("float16", "float32", "float64")



def way_names(ndim: int) -> list[str]:
    return ["torch autograd", f"torch.nn.grad.conv{ndim}d_input", f"F.conv_transpose{ndim}d"]


def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
    names = way_names(spec.ndim)
    if spec.ndim > 3:
        return dict.fromkeys(names, NotExpressible(
            f"torch has 1-d, 2-d and 3-d convolutions only, this spec has {spec.ndim}"))
    if g.dtype.name not in _DTYPES:
        return dict.fromkeys(names, NotExpressible(
            f"torch CPU convolutions take {', '.join(_DTYPES)}, not {g.dtype.name}"))
    import torch
    import torch.nn.functional as F

    nd = spec.ndim
    wt, gt = torch.from_numpy(np.ascontiguousarray(w)), torch.from_numpy(np.ascontiguousarray(g))
    conv = getattr(F, f"conv{nd}d")
    result = {}

    # autograd: pad explicitly (any low/high), convolve, keep the outputs y has, backpropagate.
    x = torch.zeros(spec.input_shape, dtype=gt.dtype, requires_grad=True)
    pads = [p for lo_hi in reversed(spec.padding) for p in lo_hi]  # F.pad wants the last dim first
    out = conv(F.pad(x, pads), wt, stride=spec.stride, dilation=spec.dilation, groups=spec.groups)
    out = out[(slice(None),) * 2 + tuple(slice(0, m) for m in spec.output_size)]
    (grad,) = torch.autograd.grad(out, x, gt)
    result[names[0]] = grad.numpy()

    padding = spec.symmetric_padding
    if padding is None:
        why = NotExpressible(f"torch pads symmetrically; padding {spec.padding} is not")
        result[names[1]] = result[names[2]] = why
        return result
    if spec.output_padding_exceeds_stride:
        result[names[1]] = NotExpressible(
            f"input size {spec.input_size} is not a size the forward convolution maps to "
            f"{spec.output_size} (output_padding {spec.output_padding} >= stride {spec.stride})")
    else:
        grad_input = getattr(torch.nn.grad, f"conv{nd}d_input")
        result[names[1]] = grad_input(spec.input_shape, wt, gt, stride=spec.stride,
                                      padding=padding, dilation=spec.dilation,
                                      groups=spec.groups).numpy()
    transpose = getattr(F, f"conv_transpose{nd}d")
    result[names[2]] = transpose(gt, wt, stride=spec.stride, padding=padding,
                                 output_padding=spec.output_padding, groups=spec.groups,
                                 dilation=spec.dilation).numpy()
    return result


def benchmark_callables(op: str, spec: ConvSpec, x: np.ndarray, w: np.ndarray,
                        g: np.ndarray) -> dict:
    """Zero-argument callables for ``tconv bench`` (inputs converted once), per ``op``:
    ``input_grad`` (dL/dx: conv_transpose and autograd), ``conv`` (the forward convolution) or
    ``weight_grad`` (dL/dw: torch.nn.grad and autograd). Autograd times the forward as well."""
    if spec.ndim > 3 or g.dtype.name not in _DTYPES or spec.symmetric_padding is None:
        return {}
    import torch
    import torch.nn.functional as F

    nd = spec.ndim
    xt, wt, gt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, w, g))
    kw = dict(stride=spec.stride, padding=spec.symmetric_padding, dilation=spec.dilation,
              groups=spec.groups)
    conv = getattr(F, f"conv{nd}d")
    keep = (slice(None),) * 2 + tuple(slice(0, m) for m in spec.output_size)

    def autograd(x_in: torch.Tensor, w_in: torch.Tensor, wrt: torch.Tensor):
        def run():
            return torch.autograd.grad(conv(x_in, w_in, **kw)[keep], wrt, gt)[0]
        return run

    if op == "conv":
        def forward():
            with torch.no_grad():
                return conv(xt, wt, **kw)[keep]
        return {"torch conv": forward}
    if op == "weight_grad":
        w_in = wt.clone().requires_grad_(True)
        ways = {"torch autograd": autograd(xt, w_in, w_in)}
        if not spec.output_padding_exceeds_stride:
            # (otherwise x has cells past the last window and nn.grad refuses g's shape)
            weight = getattr(torch.nn.grad, f"conv{nd}d_weight")
            ways["torch nn.grad"] = lambda: weight(xt, spec.weight_shape, gt, **kw)
        return ways
    transpose = getattr(F, f"conv_transpose{nd}d")

    def conv_transpose():
        with torch.no_grad():
            return transpose(gt, wt, output_padding=spec.output_padding, **kw)

    x_in = torch.zeros_like(xt, requires_grad=True)
    return {"torch conv_transpose": conv_transpose, "torch autograd": autograd(x_in, wt, x_in)}
