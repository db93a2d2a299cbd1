"""The three operations of any ConvSpec computed by PyTorch, for tests that compare with it.

PyTorch pads symmetrically only; the spec's (low, high) padding is therefore applied outside it,
in the way each definition says: the transposed convolution is computed uncropped (padding 0)
and cropped to ``spec.input_window``; the forward convolution and the weight gradient read the
input zero-padded by ``F.pad`` (the padding zeros are factors, as in PyTorch's own padding) and
cut to the cells the windows reach.

NaN and infinities: PyTorch's own kernels put them where the definition does; its oneDNN kernel
for float32 transposed convolutions with a batch of two or more and a stride above 1 does not
(it spreads a NaN tap to cells the definition does not reach, as zero insertion would:
tests/core/test_nonfinite.py shows it). ``onednn=False`` runs PyTorch with oneDNN off.
"""
import contextlib
import warnings

import numpy as np
import torch

F = torch.nn.functional
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


def _t(a, dtype):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))


def _read(x, spec):
    """``x`` padded by the spec's padding and cut to the cells its windows reach."""
    pads = [p for pair in reversed(spec.padding) for p in pair]
    padded = F.pad(x, pads)
    reach = tuple(slice(0, (m - 1) * s + e) for m, s, e in
                  zip(spec.output_size, spec.stride, spec.extents))
    return padded[(slice(None),) * 2 + reach]


def run(operation, a, b, spec, dtype=np.float64, onednn=True) -> np.ndarray:
    """``operation`` ("conv_transpose", "conv" or "weight_grad") of ``spec`` by PyTorch, in
    ``dtype`` (float32 or float64), with or without its oneDNN kernels."""
    nd = spec.ndim
    ta, tb = _t(a, dtype), _t(b, dtype)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # setting the flag notes that Intel GPUs are absent
        with contextlib.nullcontext() if onednn else torch.backends.mkldnn.flags(enabled=False):
            return _run(operation, ta, tb, spec, nd)


def _run(operation, ta, tb, spec, nd):
    if operation == "conv_transpose":
        full = getattr(F, f"conv_transpose{nd}d")(
            ta, tb, stride=spec.stride, output_padding=spec.output_padding,
            dilation=spec.dilation, groups=spec.groups)
        return full[(slice(None),) * 2 + spec.input_window].numpy()
    if operation == "conv":
        return getattr(F, f"conv{nd}d")(_read(ta, spec), tb, stride=spec.stride,
                                        dilation=spec.dilation, groups=spec.groups).numpy()
    grad = getattr(torch.nn.grad, f"conv{nd}d_weight")
    return grad(_read(ta, spec), spec.weight_shape, tb, stride=spec.stride,
                dilation=spec.dilation, groups=spec.groups).numpy()
