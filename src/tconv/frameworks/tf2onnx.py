"""tf2onnx: TensorFlow's ``tf.nn.conv{N}d_transpose`` converted to ONNX, run by onnxruntime.

The source layer is a ``tf.function`` computing ``tf.nn.conv{N}d_transpose(g, filters,
output_shape=x.shape, strides, padding, dilations)`` with the filter as a constant, in
TensorFlow's layouts (see :mod:`tconv.frameworks.tensorflow`): the spec's padding as
``'VALID'``, ``'SAME'`` or, in 2-d only, an explicit ``[[0, 0], [lo, hi], [lo, hi], [0, 0]]``;
``output_shape`` picks among the input sizes the forward convolution maps to ``g``'s size, so
``output_padding < stride``; no groups. TensorFlow's CPU kernels reject dilation > 1 in the
input gradient, but the graph is valid and tf2onnx converts it (the layer runs on other devices),
so dilated specs are converted too. ``tf2onnx.convert.from_function`` writes the model (its
default opset), which onnxruntime's CPU provider runs on channels-last data.

A conversion that raises is :class:`Refused` with the message; a model onnxruntime will not
load is :class:`Broken`. tf2onnx ignores the padding of a constant-shape Conv2DBackpropInput
(found by ``tconv sweep``): explicit paddings and 'VALID' with ``output_padding > 0`` are a
:class:`KnownDifference` with the reproduction.
"""
from __future__ import annotations

import contextlib
import io
import logging

import numpy as np

from ..spec import ConvSpec
from . import Broken, Framework, KnownDifference, NotExpressible, Refused, first_line, model_limits
from .tensorflow import (channels_last_format, import_tf, padding_of, tf_filter,
                         to_channels_first, to_channels_last, unreached_rows)
from .torch_onnx import run_onnxruntime


#: Found by tconv's sweep, not reported upstream yet.
PADDING_BUG = (
    "new (docs/reproductions/tf2onnx_explicit_padding.py): for Conv2DBackpropInput with a "
    "constant output shape tf2onnx ignores the padding and derives pads from the output size, "
    "total//2 at the start (TF's 'SAME' split): other explicit paddings come out wrong, and "
    "'VALID' with an output_shape above the minimum gets negative pads")


def _padding_bug_region(spec: ConvSpec) -> bool:
    padding = tf_padding(spec)
    return isinstance(padding, list) or (padding == "VALID" and any(spec.output_padding))


def tf_padding(spec: ConvSpec):
    """The ``padding`` argument of ``tf.nn.conv{N}d_transpose`` for ``spec``, or None."""
    padding = padding_of(spec)
    if isinstance(padding, list):
        return [[0, 0], *padding, [0, 0]] if spec.ndim == 2 else None
    return padding


def limits(spec: ConvSpec, dtype) -> NotExpressible | None:
    """Why ``tf.nn.conv{N}d_transpose`` cannot be the spec's layer, or None."""
    why = model_limits(spec, dtype, "the converted tf.nn.conv_transpose")
    if why:
        return NotExpressible(why)
    if spec.groups > 1:
        return NotExpressible(f"tf.nn.conv_transpose has no groups; groups={spec.groups}")
    if spec.output_padding_exceeds_stride:
        return unreached_rows(spec)
    if tf_padding(spec) is None:
        return NotExpressible(
            f"conv{spec.ndim}d_transpose takes padding 'VALID' or 'SAME' only (explicit lists "
            f"are 2-d only); padding {spec.padding} is neither")
    return None


def tf_function(spec: ConvSpec, w: np.ndarray):
    """The source layer: ``g`` (channels-last) -> ``x`` (channels-last), filter constant."""
    tf = import_tf()
    g_shape = [spec.batch, *spec.output_size, spec.out_channels]
    output_shape = [spec.batch, *spec.input_size, spec.in_channels]
    filters = tf_filter(np.ascontiguousarray(w, dtype=np.float32))
    transpose = getattr(tf.nn, f"conv{spec.ndim}d_transpose")
    padding = tf_padding(spec)
    signature = [tf.TensorSpec(g_shape, tf.float32, name="g")]

    @tf.function(input_signature=signature)
    def layer(g):
        return transpose(g, tf.constant(filters), output_shape, strides=list(spec.stride),
                         padding=padding, data_format=channels_last_format(spec.ndim),
                         dilations=list(spec.dilation))

    return layer, signature


class Tf2Onnx(Framework):
    """tf2onnx of tf.nn.convNd_transpose, run by onnxruntime."""

    name = "tf2onnx"
    packages = ("tf2onnx", "tensorflow", "onnxruntime")
    rank = 65
    ways = ("tf2onnx(tf.nn.conv{n}d_transpose) -> onnxruntime",)

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` through tf2onnx and onnxruntime; see the module docstring."""
        (name,) = Tf2Onnx.way_names(spec.ndim)
        why = limits(spec, g.dtype)
        if why:
            return {name: why}
        import_tf()                 # before tf2onnx imports it with its start-up logs
        import tf2onnx

        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        quiet = io.StringIO()
        try:
            with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
                layer, signature = tf_function(spec, w)
                model, _ = tf2onnx.convert.from_function(layer, input_signature=signature)
        except Exception as error:  # the converter's refusal
            return {name: Refused(f"tf2onnx: {first_line(error)}")}
        feeds = {model.graph.input[0].name: to_channels_last(g)}
        try:
            out = to_channels_first(run_onnxruntime(model.SerializeToString(), feeds))
        except Exception as error:
            out = Broken(f"onnxruntime fails on the converted model: {first_line(error)}")
        return {name: KnownDifference(PADDING_BUG, out) if _padding_bug_region(spec) else out}

