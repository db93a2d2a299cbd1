"""nobuco: a PyTorch ``nn.ConvTranspose{N}d`` converted to a Keras 2 model, run by TensorFlow.

The source layer is :func:`tconv.frameworks.torch_onnx.torch_layer` (so PyTorch's limits
apply: symmetric padding, 1-3 dims). ``nobuco.pytorch_to_keras`` traces it on the upstream
gradient and writes a ``tf_keras`` model, asked to keep PyTorch's channels-first order at its
input and output (``ChannelOrder.PYTORCH``); the model runs on the same ``g``. nobuco records a
layer it cannot convert in its report and puts a stub in the model that raises when called; the
report's "Error message" line is the :class:`Refused` reason. A kernel shorter than the
stride gives extra cells (found by ``tconv sweep``): a :class:`KnownDifference`.

nobuco imports ``keras.src.engine``, which only Keras 2 has; the ``keras`` package installed
beside TensorFlow is Keras 3, and Keras 2 is the ``tf_keras`` package. So nobuco runs in a child
process (:mod:`tconv.frameworks._server`) with ``TF_USE_LEGACY_KERAS=1`` (``tf.keras`` is then
``tf_keras``) and ``import keras`` answered with ``tf_keras`` and its submodules (the same module
objects, not copies). A child that dies or hangs is :class:`Crashed`.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

import numpy as np

from ..spec import ConvSpec
from . import Crashed, Framework, KnownDifference, Refused
from .torch_onnx import torch_layer, torch_limits


#: seconds one conversion and run may take in the child
TIMEOUT = 120.0
_server = None


#: Found by tconv's sweep, not reported upstream yet.
SHORT_KERNEL_BUG = (
    "new (docs/reproductions/nobuco_kernel_below_stride.py): with a (dilated) kernel shorter "
    "than the stride the Keras model has input * stride cells (Keras' 'valid' size), more than "
    "PyTorch's (input - 1) * stride + K")


def _get_server():
    global _server
    if _server is None:
        from ._server import Server

        _server = Server(__name__, timeout=TIMEOUT, env={
            "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"})
    return _server


# -- the child's side -----------------------------------------------------------------------------

class _KerasIsTfKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answer ``import keras[.x.y]`` with the already imported ``tf_keras[.x.y]`` module."""

    def find_spec(self, name, path, target=None):
        if name == "keras" or name.startswith("keras."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("tf_keras" + spec.name[len("keras"):])

    def exec_module(self, module):
        pass


def child_init() -> None:
    """Keras 2 as ``keras``, torchvision importable, then nobuco."""
    import tf_keras  # noqa: F401

    for name in [m for m in sys.modules if m == "keras" or m.startswith("keras.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, _KerasIsTfKeras())
    from ._torchvision import import_torchvision

    import_torchvision()
    import nobuco  # noqa: F401


def convert_and_run(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Convert the spec's ``nn.ConvTranspose{N}d`` with nobuco and run the Keras model on ``g``.

    Raises RuntimeError with nobuco's reason when the layer did not convert.
    """
    import contextlib
    import io

    import nobuco
    import torch
    from nobuco import ChannelOrder

    module = torch_layer(spec, w)
    example = torch.from_numpy(g)
    report = io.StringIO()
    try:
        with contextlib.redirect_stdout(report):
            keras_model = nobuco.pytorch_to_keras(
                module, args=[example], inputs_channel_order=ChannelOrder.PYTORCH,
                outputs_channel_order=ChannelOrder.PYTORCH)
    except Exception as error:
        failure = error
    else:
        failure = None
    reasons = [line.split("Error message:", 1)[1].strip()
               for line in report.getvalue().splitlines() if "Error message:" in line]
    if reasons:
        raise RuntimeError(reasons[0])
    if failure is not None:
        raise failure
    return np.asarray(keras_model(g))


class Nobuco(Framework):
    """nobuco of nn.ConvTransposeNd to Keras 2, run by tf_keras."""

    name = "nobuco"
    packages = ("nobuco", "torch", "tf_keras")
    rank = 80
    ways = ("nobuco(nn.ConvTranspose{n}d) -> Keras",)

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` through nobuco and Keras 2; see the module docstring."""
        from ._server import RemoteError, ServerCrashed

        (name,) = Nobuco.way_names(spec.ndim)
        why = torch_limits(spec, g.dtype)
        if why:
            return {name: why}
        try:
            out = _get_server().call("convert_and_run", spec, np.ascontiguousarray(w),
                                     np.ascontiguousarray(g))
        except RemoteError as error:
            return {name: Refused(f"nobuco: {error}")}
        except ServerCrashed as error:
            return {name: Crashed(str(error))}
        if any(e < s for e, s in zip(spec.extents, spec.stride)):
            return {name: KnownDifference(SHORT_KERNEL_BUG, out)}
        return {name: out}

