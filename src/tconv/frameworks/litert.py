"""LiteRT (TensorFlow Lite): ``TRANSPOSE_CONV`` / ``CONV_3D_TRANSPOSE`` converted from a TF function
by ``tf.lite.TFLiteConverter``, run by ``ai_edge_litert``'s ``Interpreter``.

The source is ``tf.nn.conv{N}d_transpose`` in a ``tf.function`` with the filter as a constant
(as a trained model has it), in TensorFlow's layouts: data ``(N, *spatial, C)``, filter
``[*k, C_in, C_out]`` = tconv's ``w`` with its axes reversed (see
:mod:`tconv.frameworks.tensorflow`). The converter maps the 2-d op to the builtin
``TRANSPOSE_CONV`` (1-d: the same between ``EXPAND_DIMS`` and ``SQUEEZE``), the 3-d op to
``CONV_3D_TRANSPOSE``; float32 only (the builtins' float kernels), no quantisation.

Ways:

``LiteRT TRANSPOSE_CONV``
    padding ``'SAME'`` or ``'VALID'`` and ``output_shape = x.shape``, builtin ops only. The
    builtin has neither dilation nor groups, and only these two paddings.
``LiteRT TRANSPOSE_CONV VALID + crop``
    the uncropped ``'VALID'`` result, then ``x``'s window of it (a ``STRIDED_SLICE``): any
    padding, still no dilation or groups.
``LiteRT Flex Conv2DBackpropInput``
    2-d explicit padding (``[[0, 0], [lo, hi], [lo, hi], [0, 0]]``), which no builtin expresses:
    the converter keeps TensorFlow's ``Conv2DBackpropInput`` as a Select TF op (Flex). Neither
    ``ai_edge_litert``'s interpreter nor ``tf.lite.Interpreter`` of the ``tensorflow`` wheel links
    the Flex delegate, so the model converts but cannot run (TICO #420 meets the same wall):
    the way reports the interpreter's error as not expressible, and would run where Flex is linked.

``tf.lite.TFLiteConverter.from_concrete_functions`` is used on a plain ``tf.function``: on a
Keras 3 model it can leave the weights as uninitialised variables.

As a conversion target (``tconv convert --to litert``, :func:`tconv.convert.layer`), tconv writes
the layer as Keras 3 ``Conv{1,2,3}DTranspose`` with padding ``'same'`` or ``'valid'`` (the crop as
Keras ``Cropping``/``ZeroPadding`` layers) and converts it with
``tf.lite.TFLiteConverter.from_keras_model``, as users do: that gives builtin ``TRANSPOSE_CONV``
(``CONV_3D_TRANSPOSE`` in 3-d) and ``STRIDED_SLICE`` / ``PAD`` ops only, where the exact TF form
with explicit padding needs Flex. The layer's parameters are Keras'
(:class:`~tconv.frameworks.tensorflow.Keras`), so reading and writing are Keras', relabelled;
what differs is the code (the conversion and the interpreter) and what runs (float32, no
dilation: a dilated layer is written with a zero-dilated kernel, ``zero_dilated_kernel=True``).
"""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from ..spec import ConvSpec
from . import (Broken, Framework, NotExpressible, Refused, first_line, model_limits,
               native_logs_silenced)
from .tensorflow import (Keras, channels_last_format, import_tf, keras_lines, padding_of,
                         tf_filter, to_channels_first, to_channels_last, unreached_rows)


_BUILTIN, _CROP, _FLEX = ("LiteRT TRANSPOSE_CONV", "LiteRT TRANSPOSE_CONV VALID + crop",
                          "LiteRT Flex Conv2DBackpropInput")


def _tflite_model(spec: ConvSpec, w: np.ndarray, padding, output_size, crop, flex: bool) -> bytes:
    """The flatbuffer of ``conv{N}d_transpose(g, filter, output_shape, padding)[crop]``."""
    tf = import_tf()
    nd = spec.ndim
    g_shape = [spec.batch, *spec.output_size, spec.out_channels]
    output_shape = [spec.batch, *output_size, spec.in_channels]
    filters = tf_filter(w)
    transpose = getattr(tf.nn, f"conv{nd}d_transpose")

    @tf.function(input_signature=[tf.TensorSpec(g_shape, tf.float32, name="g")])
    def layer(g):
        x = transpose(g, tf.constant(filters), output_shape, strides=list(spec.stride),
                      padding=padding, data_format=channels_last_format(nd),
                      dilations=list(spec.dilation))
        if crop is not None:
            x = x[(slice(None),) + crop]
        return x

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [layer.get_concrete_function()], layer)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if flex:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    with native_logs_silenced():    # 'Ignored output_format', 'needs to link Flex delegate'...
        return converter.convert()


def run_tflite(model: bytes, inputs: list[np.ndarray]) -> np.ndarray:
    """Run a flatbuffer with ``ai_edge_litert``'s interpreter (one thread); the first output."""
    from ai_edge_litert.interpreter import Interpreter

    with native_logs_silenced():    # 'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.'
        interpreter = Interpreter(model_content=model, num_threads=1)
        interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def _limits(spec: ConvSpec) -> str | None:
    """Why no TFLite transposed-convolution builtin expresses the spec, or None."""
    if spec.groups > 1:
        return (f"TRANSPOSE_CONV and CONV_3D_TRANSPOSE have no groups (and TensorFlow's "
                f"conv_transpose neither); groups={spec.groups}")
    unreached = unreached_rows(spec)
    return None if unreached is None else f"{unreached.reason}; so does the TFLite converter"


def _convert(spec, w, padding, output_size, crop, flex):
    """The flatbuffer, or a Refused with the converter's message."""
    try:
        return _tflite_model(spec, w, padding, output_size, crop, flex)
    except Exception as error:  # the converter's refusal is a result, not a crash
        text = str(error)
        ops = [line.strip() for line in text.splitlines() if "ops:" in line]
        return Refused(f"TFLiteConverter: {ops[0] if ops else first_line(error)}")


def _run_flex(model, g_last):
    if isinstance(model, Refused):
        return model
    try:
        return to_channels_first(run_tflite(model, [g_last]))
    except Exception as error:
        if "Select TensorFlow op" not in str(error):
            return Broken(f"the LiteRT interpreter fails on the converted model: "
                          f"{first_line(error)}")
        return NotExpressible(
            "the model needs Flex (Select TF op Conv2DBackpropInput); ai_edge_litert's "
            "Interpreter (and tf.lite.Interpreter of the tensorflow wheel) does not link the "
            "Flex delegate: 'Select TensorFlow op(s), included in the given model, is(are) not "
            "supported by this interpreter'")


class LiteRT(Framework):
    """LiteRT (TFLite): the ways of TRANSPOSE_CONV converted from a TF function and run by its
    interpreter; as a conversion target, a TFLite model of the Keras layer."""

    name = "litert"
    aliases = ("tflite",)
    title = "LiteRT"
    packages = ("ai_edge_litert", "tensorflow")  # its interpreter; TensorFlow converts the model
    rank = 45
    flag_call = "LiteRT TRANSPOSE_CONV"
    flags_taken, flag_hint, shape_args = Keras.flags_taken, Keras.flag_hint, Keras.shape_args
    dilates_kernel = True
    crop_reason = ("TFLite converts tf.nn.conv_transpose with explicit padding to a Flex op, "
                   "which the LiteRT interpreter cannot run; tconv writes Keras 'same'/'valid' "
                   "(the builtin TRANSPOSE_CONV) and a crop.")

    ways = (_BUILTIN, _CROP, _FLEX)

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` by LiteRT, every way; see the module docstring.

        ``g`` is ``spec.output_shape`` (channels-first, as everywhere in tconv), ``w`` the forward
        weight; each result is ``spec.input_shape`` in float32.
        """
        names = LiteRT.way_names(spec.ndim)
        why = (model_limits(spec, g.dtype, "the TFLite model (the builtins' float kernels)")
               or _limits(spec))
        if why:
            return dict.fromkeys(names, NotExpressible(why))
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        w = np.ascontiguousarray(w, dtype=np.float32)
        g_last = to_channels_last(g)
        result = {}
        dilated = any(d > 1 for d in spec.dilation)
        no_dilation = NotExpressible(
            f"TRANSPOSE_CONV and CONV_3D_TRANSPOSE have no dilation; dilation {spec.dilation}")

        def run(model):
            if isinstance(model, Refused):
                return model
            try:
                return to_channels_first(run_tflite(model, [g_last]))
            except Exception as error:  # converted, but the interpreter fails on it
                return Broken(f"the LiteRT interpreter fails on the converted model: "
                              f"{first_line(error)}")

        padding = padding_of(spec)
        if dilated:
            result[_BUILTIN] = no_dilation
        elif isinstance(padding, list):
            result[_BUILTIN] = NotExpressible(
                f"padding {spec.padding} is neither TFLite's 'SAME' nor 'VALID' (explicit padding "
                f"needs Flex: the way '{_FLEX}')")
        else:
            result[_BUILTIN] = run(_convert(spec, w, padding, spec.input_size, None, False))

        full = [max(f, win.stop) for f, win in zip(spec.full_output_size, spec.input_window)]
        if dilated:
            result[_CROP] = no_dilation
        elif any(f - m >= s for f, m, s in zip(full, spec.full_output_size, spec.stride)):
            result[_CROP] = NotExpressible(
                f"x reaches {full}, beyond every output_shape 'VALID' accepts for "
                f"{spec.output_size} outputs ({spec.full_output_size} + up to stride - 1)")
        else:
            result[_CROP] = run(_convert(spec, w, "VALID", full, spec.input_window, False))

        if spec.ndim != 2 or not isinstance(padding, list) and not dilated:
            result[_FLEX] = NotExpressible(
                "Flex is only needed (and only tried) for what the builtins cannot say: 2-d "
                "explicit padding or dilation" if spec.ndim == 2 else
                f"TensorFlow takes explicit padding in 2-d only; this spec is {spec.ndim}-d")
        else:
            model = _convert(spec, w, [[0, 0], *map(list, padding), [0, 0]]
                             if isinstance(padding, list) else padding, spec.input_size, None, True)
            result[_FLEX] = _run_flex(model, g_last)
        return result

    @staticmethod
    def read(**args):
        """The Keras layer of these arguments (:meth:`Keras.read`), deployed as TFLite."""
        return replace(Keras.read(**args), framework="litert")

    @staticmethod
    def write(spec: ConvSpec, options: dict) -> dict:
        return Keras.write(spec, options)

    @staticmethod
    def from_flags(**words):
        return replace(Keras.from_flags(**words), framework="litert")

    def code(self, layer, crop, bias, runnable: bool = False):
        """The Keras layer (and crop), ``TFLiteConverter.from_keras_model``, and the interpreter;
        ``layer`` is the ``.tflite`` model's bytes. float32, as the model is."""
        setup = ["weight = weight.astype(np.float32)      # TFLite's TRANSPOSE_CONV is float32"]
        if bias:
            setup.append("bias = bias.astype(np.float32)")
        setup += keras_lines(layer, crop, bias)
        if not any(line.startswith("conv = ") for line in setup):    # no crop: the layer alone
            setup += [f"layer = keras.Sequential([keras.Input(shape="
                      f"{tuple(layer.input_shape[1:])}), layer])"]
        setup += ["converter = tf.lite.TFLiteConverter.from_keras_model(layer)",
                  "layer = converter.convert()     # the .tflite model: builtin TRANSPOSE_CONV",
                  "interpreter = Interpreter(model_content=layer)",
                  'x_index = interpreter.get_input_details()[0]["index"]']
        body = ["interpreter.resize_tensor_input(x_index, np.shape(x))",
                "interpreter.allocate_tensors()",
                "interpreter.set_tensor(x_index, np.asarray(x, np.float32))",
                "interpreter.invoke()",
                'y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])',
                "return y.astype(np.result_type(x))    # computed in float32"]
        return (["import keras", "import tensorflow as tf",
                 "from ai_edge_litert.interpreter import Interpreter"], setup, body)

    def cannot_run(self, layer) -> str | None:
        if any(d > 1 for d in layer.spec.dilation):
            return (f"LiteRT's TRANSPOSE_CONV has no dilation ({tuple(layer.spec.dilation)}): "
                    f"convert with zero_dilated_kernel=True (--zero-dilated-kernel)")
        return super().cannot_run(layer)

    def prepare(self) -> None:
        import_tf()
