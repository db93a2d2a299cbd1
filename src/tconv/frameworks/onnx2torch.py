"""onnx2torch: an ONNX ``ConvTranspose`` node converted to a PyTorch module, run by PyTorch.

The source is the one-node model of :mod:`tconv.frameworks.onnx` in each of its three
forms (``pads``, ``output_shape``, ``auto_pad``), with the weight as an initializer as in an
exported model; ``onnx2torch.convert`` turns it into a ``torch.fx.GraphModule``, which runs on
the upstream gradient. ``nn.ConvTransposeNd`` pads symmetrically and takes no ``output_shape``,
so onnx2torch has to translate the other attributes or refuse (onnx2torch#52, #68 for
asymmetric pads): its exception is :class:`Refused` with the message. It ignores
``output_shape`` (found by ``tconv sweep``): that form is a :class:`KnownDifference`.

onnx2torch imports torchvision (for its NMS and RoIAlign converters); see
:mod:`tconv.frameworks._torchvision` for the torchvision that does not load beside the CPU torch.
"""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np

from ..spec import ConvSpec
from . import Broken, Framework, KnownDifference, NotExpressible, Refused, first_line, model_limits
from .onnx import FORMS, expressible, model_with_weight


#: Found by tconv's sweep, not reported upstream yet.
OUTPUT_SHAPE_BUG = (
    "new (docs/reproductions/onnx2torch_output_shape.py): onnx2torch ignores ConvTranspose's "
    "output_shape, so the module returns the uncropped result")


def _convert(model):
    from ._torchvision import import_torchvision

    import_torchvision()
    from onnx2torch import convert

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return convert(model)


class Onnx2Torch(Framework):
    """onnx2torch of the ONNX ConvTranspose node, run by torch."""

    name = "onnx2torch"
    packages = ("onnx2torch", "onnx", "torch")
    rank = 70

    ways = tuple(f"onnx2torch {form}" for form in FORMS)

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` by each ONNX form converted by onnx2torch; see the module docstring."""
        names = Onnx2Torch.way_names(spec.ndim)
        why = model_limits(spec, g.dtype, "the ONNX model onnx2torch converts here")
        if why:
            return dict.fromkeys(names, NotExpressible(why))
        import torch

        w = np.ascontiguousarray(w, dtype=np.float32)
        g_t = torch.from_numpy(np.ascontiguousarray(g))
        result = {}
        for form, name, attrs in expressible(spec, FORMS, names, result):
            try:
                module = _convert(model_with_weight(attrs, spec.output_shape, w))
            except Exception as error:  # the converter's refusal
                result[name] = Refused(f"onnx2torch: {first_line(error)}")
                continue
            try:
                with torch.no_grad():
                    out = module(g_t)
            except Exception as error:  # converted, but the module cannot run the layer
                result[name] = Broken(f"the converted module raises {first_line(error)}")
                continue
            out = out.numpy()
            result[name] = KnownDifference(OUTPUT_SHAPE_BUG, out) if form == "output_shape" else out
        return result

