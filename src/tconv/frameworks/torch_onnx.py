"""``torch.onnx.export``: a PyTorch ``nn.ConvTranspose{N}d`` exported to ONNX, run by onnxruntime.

The source layer is ``nn.ConvTranspose{N}d(C_out, C_in, kernel, stride, padding, output_padding,
groups, bias=False, dilation)`` with tconv's ``w`` as its weight (PyTorch's layout is tconv's),
so it computes the spec's input gradient exactly when PyTorch can express the spec: symmetric
padding, 1-3 spatial dims, ``output_padding < max(stride, dilation)``. Two exporters:

``torch.onnx.export(dynamo=False) -> onnxruntime``
    the TorchScript-based exporter (``torch.jit.trace`` and the symbolic functions);
``torch.onnx.export(dynamo=True) -> onnxruntime``
    the ``torch.export``-based exporter, which writes the graph with onnxscript.

Each exported model runs in onnxruntime's CPU provider. An exporter that raises is
:class:`Refused` with the message; a model onnxruntime will not load or run is :class:`Broken`,
and a documented :class:`KnownDifference` where PyTorch's ``output_padding >= stride`` (allowed
below the dilation) is written as is and onnxruntime refuses it (onnxruntime#14208).
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from ..spec import ConvSpec
from . import Broken, Framework, KnownDifference, NotExpressible, Refused, first_line, model_limits
_EXPORTERS = {"torch.onnx.export(dynamo=False) -> onnxruntime": False,
              "torch.onnx.export(dynamo=True) -> onnxruntime": True}


#: PyTorch allows output_padding < max(stride, dilation); onnxruntime refuses >= stride.
OUTPUT_PADDING_BUG = (
    "both exporters write PyTorch's output_padding >= stride (allowed below the dilation) "
    "as is, and onnxruntime refuses it ('output_padding may be too large for stride'; "
    "onnxruntime#14208; ONNX's text says 'less than the corresponding stride/dilation', "
    "onnx#3187)")


def torch_layer(spec: ConvSpec, w: np.ndarray):
    """``nn.ConvTranspose{N}d`` of a spec with symmetric padding, ``w`` as its weight."""
    import torch

    module = getattr(torch.nn, f"ConvTranspose{spec.ndim}d")(
        spec.out_channels, spec.in_channels, spec.kernel_size, stride=spec.stride,
        padding=spec.symmetric_padding, output_padding=spec.output_padding, groups=spec.groups,
        bias=False, dilation=spec.dilation)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
    return module.eval()


#: The reason every deploy way gives for N = 0.


def torch_limits(spec: ConvSpec, dtype) -> NotExpressible | None:
    """Why ``nn.ConvTranspose{N}d`` cannot be the spec's layer, or None."""
    why = model_limits(spec, dtype, "the exported nn.ConvTransposeNd (PyTorch's default dtype)")
    if why:
        return NotExpressible(why)
    if spec.symmetric_padding is None:
        return NotExpressible(f"nn.ConvTransposeNd pads symmetrically; padding {spec.padding} "
                              f"is not")
    return None


def _export(module, example, dynamo: bool) -> bytes:
    import torch

    quiet = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), \
            contextlib.redirect_stderr(quiet):
        warnings.simplefilter("ignore")
        if dynamo:
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=["g"],
                                        output_names=["x"], verbose=False)
            return program.model_proto.SerializeToString()
        buffer = io.BytesIO()
        torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["g"],
                          output_names=["x"])
        return buffer.getvalue()


def run_onnxruntime(model: bytes, feeds: dict) -> np.ndarray:
    """The first output of ``model`` run by onnxruntime's CPU provider (one thread)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4      # its refusals are results here, not log lines
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


class TorchOnnx(Framework):
    """torch.onnx.export (TorchScript and dynamo exporters) of nn.ConvTransposeNd, run by
    onnxruntime."""

    name = "torch.onnx"
    packages = ("torch", "onnx", "onnxruntime")
    rank = 60

    ways = tuple(_EXPORTERS)

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` through each exporter and onnxruntime; see the module docstring."""
        names = TorchOnnx.way_names(spec.ndim)
        why = torch_limits(spec, g.dtype)
        if why:
            return dict.fromkeys(names, why)
        import torch

        module = torch_layer(spec, w)
        g = np.ascontiguousarray(g)
        example = torch.from_numpy(g)
        result = {}
        for name, dynamo in _EXPORTERS.items():
            try:
                model = _export(module, example, dynamo)
            except Exception as error:  # the exporter's refusal
                result[name] = Refused(f"torch.onnx.export: {first_line(error)}")
                continue
            try:
                result[name] = run_onnxruntime(model, {"g": g})
            except Exception as error:  # the runtime will not take what the exporter wrote
                broken = Broken(f"onnxruntime fails on the exported model: {first_line(error)}")
                result[name] = (KnownDifference(OUTPUT_PADDING_BUG, broken)
                                if any(op >= s for op, s in zip(spec.output_padding, spec.stride))
                                else broken)
        return result

