"""onnx2tf: an ONNX ``ConvTranspose`` node converted to TensorFlow and to TFLite, run by both.

The source is the one-node model of :mod:`tconv.frameworks.onnx` in each of its three
forms (``pads``, ``output_shape``, ``auto_pad``), the weight an initializer. ``onnx2tf.convert``
returns a ``tf_keras`` model (run by TensorFlow: the ``-> TF`` ways) and writes
``model_float32.tflite`` (run by ``ai_edge_litert``'s interpreter: the ``-> TFLite`` ways).
onnx2tf turns channels-first models into channels-last ones; each way feeds and reads whichever
layout the converted model declares (channels-last where both fit, onnx2tf's default).

onnx2tf runs in a child process (:mod:`tconv.frameworks._server`): it imports ``tf_keras`` next
to Keras 3, prints a great deal, calls ``sys.exit`` on some failures, and reads from its working
directory. For 4-d inputs with 3 channels it loads sample images for its own output check from
``calibration_image_sample_data_20x128x128x3_float32.npy`` in the working directory and
downloads the file if it is missing; the child's working directory holds a generated file of
that name (seeded random numbers in [0, 1)), so nothing is downloaded. A failed conversion is
:class:`Refused` with onnx2tf's message, a child that dies or hangs is :class:`Crashed`. The
``auto_pad`` SAME modes convert to models that fail or differ (found by ``tconv sweep``): a
:class:`KnownDifference` with the reproduction.
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import tempfile

import numpy as np

from ..spec import ConvSpec
from . import (Broken, Crashed, Framework, KnownDifference, NotExpressible, Refused, first_line,
               model_limits)
from .onnx import FORMS, form_attributes, model_with_weight


_TARGETS = ("TF", "TFLite")
_CALIBRATION = "calibration_image_sample_data_20x128x128x3_float32.npy"
#: seconds one conversion and its two runs may take in the child
TIMEOUT = 120.0
_server = None


#: Found by tconv's sweep, not reported upstream yet.
SAME_BUG = (
    "new (docs/reproductions/onnx2tf_same_upper.py): onnx2tf converts ConvTranspose with "
    "auto_pad SAME_UPPER / SAME_LOWER to models that fail or differ (the TF model in its oneDNN "
    "kernel, the .tflite's TRANSPOSE_CONV in prepare)")


# -- the parent's side ----------------------------------------------------------------------------

def _get_server():
    global _server
    if _server is None:
        from ._server import Server

        workdir = tempfile.mkdtemp(prefix="tconv-onnx2tf-")
        atexit.register(shutil.rmtree, workdir, True)
        rng = np.random.default_rng(0)
        np.save(os.path.join(workdir, _CALIBRATION),
                rng.random((20, 128, 128, 3), dtype=np.float32))
        _server = Server(__name__, cwd=workdir, timeout=TIMEOUT,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"})
    return _server


def _layouts(spec: ConvSpec):
    first = tuple(spec.output_shape)
    last = (spec.batch, *spec.output_size, spec.out_channels)
    return first, last


def _channels_first(out: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The converted model's output as ``(N, C, *spatial)``: channels-last if its shape says so."""
    last = (spec.batch, *spec.input_size, spec.in_channels)
    if out.shape == last:
        return np.ascontiguousarray(np.moveaxis(out, -1, 1))
    return out


# -- the child's side -----------------------------------------------------------------------------

def child_init() -> None:
    """Import onnx2tf (and TensorFlow) once, quietly."""
    import logging

    import onnx2tf  # noqa: F401
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)


def _feed(shape, g: np.ndarray, layouts) -> np.ndarray:
    first, last = layouts
    if tuple(shape) == last:
        return np.ascontiguousarray(np.moveaxis(g, 1, -1))
    return g


def convert_and_run(model: bytes, g: np.ndarray, layouts):
    """Convert ``model`` with onnx2tf; run the Keras model and the float32 .tflite on ``g``.

    Returns ``(tf_output, tflite_output)``; either may be ``(kind, message)`` saying why it did
    not run: ``"flex"`` when the .tflite needs the Flex delegate, which the interpreter does not
    link, ``"broken"`` when the converted model fails. Raises whatever onnx2tf raises when it
    cannot convert.
    """
    import onnx
    import onnx2tf

    folder = tempfile.mkdtemp(dir=os.getcwd())
    try:
        keras_model = onnx2tf.convert(onnx_graph=onnx.load_from_string(model),
                                      output_folder_path=folder, non_verbose=True,
                                      verbosity="error")
        try:
            shape = tuple(int(d) for d in keras_model.inputs[0].shape)
            tf_out = np.asarray(keras_model(_feed(shape, g, layouts)))
        except Exception as error:
            tf_out = ("broken", f"the converted TF model raises {first_line(error)}")
        files = glob.glob(os.path.join(folder, "*_float32.tflite"))
        if not files:
            lite_out = ("broken", "onnx2tf wrote no float32 .tflite file")
        else:
            from ai_edge_litert.interpreter import Interpreter

            try:
                interpreter = Interpreter(model_path=files[0], num_threads=1)
                interpreter.allocate_tensors()
                detail = interpreter.get_input_details()[0]
                interpreter.set_tensor(detail["index"],
                                       _feed(tuple(detail["shape"]), g, layouts))
                interpreter.invoke()
                lite_out = np.array(interpreter.get_tensor(
                    interpreter.get_output_details()[0]["index"]))
            except Exception as error:
                if "Select TensorFlow op" in str(error):
                    lite_out = ("flex", "onnx2tf's .tflite uses Select TF ops (Flex), which the "
                                "LiteRT interpreter does not link")
                else:
                    lite_out = ("broken", f"the LiteRT interpreter fails on onnx2tf's .tflite: "
                                f"{first_line(error)}")
        return tf_out, lite_out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Onnx2Tf(Framework):
    """onnx2tf of the ONNX ConvTranspose node, run by TensorFlow and by LiteRT."""

    name = "onnx2tf"
    packages = ("onnx2tf", "onnx", "tensorflow", "tf_keras", "ai_edge_litert")
    rank = 75

    ways = tuple(f"onnx2tf {form} -> {target}" for form in FORMS for target in _TARGETS)

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` by each ONNX form converted by onnx2tf, in TF and in TFLite."""
        from ._server import RemoteError, ServerCrashed

        names = Onnx2Tf.way_names(spec.ndim)
        why = model_limits(spec, g.dtype, "the ONNX model onnx2tf converts here")
        if why:
            return dict.fromkeys(names, NotExpressible(why))
        w = np.ascontiguousarray(w, dtype=np.float32)
        g = np.ascontiguousarray(g)
        result = {}
        for form in FORMS:
            keys = [f"onnx2tf {form} -> {target}" for target in _TARGETS]
            attrs, why = form_attributes(spec, form)
            if why:
                result.update(dict.fromkeys(keys, NotExpressible(why)))
                continue
            model = model_with_weight(attrs, spec.output_shape, w).SerializeToString()
            try:
                outputs = _get_server().call("convert_and_run", model, g, _layouts(spec))
            except RemoteError as error:
                result.update(dict.fromkeys(keys, Refused(f"onnx2tf: {error}")))
                continue
            except ServerCrashed as error:
                result.update(dict.fromkeys(keys, Crashed(str(error))))
                continue
            same = attrs.get("auto_pad", "").startswith("SAME")
            for key, out in zip(keys, outputs):
                if isinstance(out, tuple):
                    kind, message = out
                    out = NotExpressible(message) if kind == "flex" else Broken(message)
                else:
                    out = _channels_first(out, spec)
                result[key] = (KnownDifference(SAME_BUG, out)
                               if same and not isinstance(out, NotExpressible) else out)
        return result

