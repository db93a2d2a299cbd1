"""LiteRT (TFLite): a transposed-conv layer as a ``.tflite`` model that the LiteRT interpreter
(``ai_edge_litert``) runs.

tconv writes the layer as Keras 3 ``Conv{1,2,3}DTranspose`` with padding ``'same'`` or
``'valid'`` (and the crop as Keras ``Cropping``/``ZeroPadding`` layers) and converts it with
``tf.lite.TFLiteConverter.from_keras_model``, as users do: those convert to the builtin
``TRANSPOSE_CONV`` (``CONV_3D_TRANSPOSE`` in 3-d) and ``STRIDED_SLICE`` / ``PAD`` ops.
``tf.nn.conv_transpose`` with *explicit* padding would convert to a Flex op
(``Conv2DBackpropInput`` from the Select TF ops), which the LiteRT interpreter does not link: so
the exact TF form is not the one to deploy, and the Keras form plus a crop is.
(``from_concrete_functions`` on a Keras 3 model can leave the weights as uninitialised
variables; ``from_keras_model`` is what tconv and its users call.)

The layer's parameters are Keras' (:class:`~tconv.frameworks.tensorflow.Keras`), so reading
and writing are Keras', relabelled; what differs is the code (the conversion and the
interpreter) and what runs (float32, no dilation: ``TRANSPOSE_CONV`` has none, so a dilated
layer is written with a zero-dilated kernel, ``zero_dilated_kernel=True``).
"""
from __future__ import annotations

from dataclasses import replace

from ..spec import ConvSpec
from . import Framework
from .tensorflow import Keras, import_tf, keras_lines


class LiteRT(Framework):
    """A TFLite model of the Keras layer, run by the LiteRT interpreter."""

    name, aliases, title = "litert", ("tflite",), "LiteRT"
    package = "ai_edge_litert"           # its interpreter; TensorFlow converts the model
    rank = 45
    flag_call = "LiteRT TRANSPOSE_CONV"
    flags_taken, flag_hint, shape_args = Keras.flags_taken, Keras.flag_hint, Keras.shape_args
    dilates_kernel = True
    crop_reason = ("TFLite converts tf.nn.conv_transpose with explicit padding to a Flex op, "
                   "which the LiteRT interpreter cannot run; tconv writes Keras 'same'/'valid' "
                   "(the builtin TRANSPOSE_CONV) and a crop.")

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
