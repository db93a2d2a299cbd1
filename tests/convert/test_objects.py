"""tconv.convert.layer: a real layer of each source framework (random weights, with a bias)
converted to every target, both objects run on the same data and compared with each other and
with tconv's exact result (float64, plus the bias).

Besides the check the conversion runs itself, each test runs the source object and the target
object here, directly through their frameworks, and compares them.
"""
import os

import numpy as np
import pytest

from tconv import convert, exact
from tconv._arrays import pad_or_crop
import oracle
from tconv.convert.layout import Layout, WeightTransform, inverse
from tconv.spec import ConvSpecError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TARGETS = ("torch", "tensorflow", "keras", "jax", "flax", "onnx", "litert")
RNG = np.random.default_rng(11)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _tf():
    from tconv.frameworks.tensorflow import import_tf
    return import_tf()


# -- the sources: one real layer each, with the arguments the object does not know --------------

def torch_layer():
    import torch
    layer = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1)
    return layer, dict(input_shape=(1, 3, 4, 5))


def torch_output_size_layer():
    """output_size given at call time picks output_padding."""
    import torch
    layer = torch.nn.ConvTranspose1d(2, 3, 4, stride=3, padding=1)
    return layer, dict(input_shape=(5,), output_size=[15])


def keras_layer():
    import keras
    _tf()
    layer = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same")
    layer.build((None, 4, 5, 3))
    layer.set_weights([randn(3, 3, 2, 3), randn(2)])
    return layer, {}


def tf_filter():
    """tf.nn.conv_transpose with explicit padding and its filter, a bias added after."""
    _tf()
    return randn(3, 3, 2, 3), dict(source="tensorflow", input_shape=(1, 4, 5, 3),
                                    output_shape=[1, 8, 10, 2], strides=2,
                                    padding=[[0, 0], [1, 0], [0, 1], [0, 0]], bias=randn(2))


def flax_linen_layer():
    import jax
    from flax import linen
    layer = linen.ConvTranspose(2, (3, 3), strides=(2, 2), padding=((1, 2), (0, 1)))
    variables = layer.init(jax.random.key(0), np.zeros((1, 4, 5, 3), np.float32))
    variables = jax.tree_util.tree_map(lambda a: randn(*a.shape), variables)
    return layer, dict(params=variables, input_shape=(4, 5))


def flax_nnx_layer():
    """padding=3 with k=3: one zero cell before the full result (wider than the kernel)."""
    from flax import nnx
    layer = nnx.ConvTranspose(3, 2, kernel_size=(3, 3), strides=2, padding=3,
                              rngs=nnx.Rngs(0))
    layer.bias[...] = randn(2)
    return layer, dict(input_shape=(4, 5))


def onnx_node():
    """ONNX's own node test test_convtranspose_output_shape, with a bias: the full result plus
    zeros (strides [3, 2], output_shape [10, 8], 3x3 input and kernel)."""
    from onnx import helper, numpy_helper
    node = helper.make_node("ConvTranspose", ["X", "W", "B"], ["Y"], strides=[3, 2],
                            output_shape=[10, 8])
    inits = [numpy_helper.from_array(randn(1, 2, 3, 3), "W"),
             numpy_helper.from_array(randn(2), "B")]
    return node, dict(initializers=inits, input_shape=(1, 1, 3, 3))


SOURCES = {"torch": torch_layer, "torch output_size": torch_output_size_layer,
           "keras": keras_layer, "tensorflow": tf_filter, "flax linen": flax_linen_layer,
           "flax nnx": flax_nnx_layer, "onnx": onnx_node}


@pytest.fixture(scope="module")
def sources():
    return {name: make() for name, make in SOURCES.items()}


@pytest.mark.parametrize("to", TARGETS)
@pytest.mark.parametrize("name", SOURCES)
def test_a_real_layer_converts_to_every_target(sources, name, to):
    """The target object, run by its framework, gives the source object's numbers (bias
    included) and tconv's exact ones."""
    obj, args = sources[name]
    result = convert.layer(obj, to=to, **args)
    assert result.check is not None and result.check.passed, result.check
    conversion = result.conversion
    assert result.bias is not None and conversion.source.bias     # the bias travels
    y = RNG.standard_normal(conversion.source.spec.output_shape).astype(np.float32)
    x_source = np.transpose(y, conversion.source.layout.data)
    x_target = np.transpose(y, conversion.target.layout.data)
    want = np.transpose(result.source_run(x_source), inverse(conversion.source.layout.output))
    got = np.asarray(result(x_target))
    assert got.shape == result.output_shape
    got = np.transpose(got, inverse(conversion.target.layout.output))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert result.check.max_diff <= 2 * result.check.bound
    # and against exact arithmetic (the float32 rounding bound, and one more rounding for the
    # bias); the zero cells the layer adds past its transposed convolution hold the bias alone
    spec, source = conversion.source.spec, conversion.source
    w = WeightTransform.between(source.layout, Layout.plain(spec.ndim),
                                spec.groups).apply(result.source_weight)
    truth = exact.conv_transpose(y, w, spec).astype(np.float64)
    limit = oracle.bound("conv_transpose", y, w, spec, truth, np.float32)
    truth, limit = pad_or_crop(truth, source.outer), pad_or_crop(limit, source.outer)
    truth = truth + result.bias.astype(np.float64).reshape((1, -1) + (1,) * spec.ndim)
    limit = limit + np.finfo(np.float32).eps * np.abs(truth)
    assert np.all(np.abs(got - truth) <= limit), f"{name} -> {to}"


def test_the_objects_are_the_targets_own(sources):
    """torch gets an nn.Module, Keras a layer or a Sequential, Flax a module with its variables,
    ONNX a model its checker accepts, LiteRT a .tflite model of builtin ops."""
    import keras
    import onnx
    import torch
    from flax import linen

    obj, args = sources["keras"]            # 'same', stride 2: torch needs a crop
    assert isinstance(convert.layer(obj, to="torch", **args).target, torch.nn.Module)
    assert isinstance(convert.layer(obj, to="keras", **args).target, keras.layers.Layer)
    flax = convert.layer(obj, to="flax", **args)
    assert isinstance(flax.target, linen.Module) and "bias" in flax.params["params"]
    model = convert.layer(obj, to="onnx", **args).target
    onnx.checker.check_model(model)
    assert [n.op_type for n in model.graph.node] == ["ConvTranspose"]
    obj, args = sources["torch"]            # keras' 'valid' + a crop in LiteRT
    ops = _tflite_ops(convert.layer(obj, to="litert", **args).target)
    assert "TRANSPOSE_CONV" in ops and "STRIDED_SLICE" in ops
    assert not any(op.startswith("Flex") for op in ops)


def _tflite_ops(model: bytes) -> list:
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=model)
    return [op["op_name"] for op in interpreter._get_ops_details()]


def test_tf_explicit_padding_is_a_flex_op_in_tflite_and_tconv_writes_the_builtin():
    """TF's explicit padding converts to a Select TF op (Conv2DBackpropInput), which the LiteRT
    interpreter does not have; the LiteRT target is Keras' 'valid' plus a crop: builtin ops
    only, and the same numbers."""
    tf = _tf()
    filters, args = tf_filter()
    spec = tf.TensorSpec((1, 4, 5, 3), tf.float32)

    @tf.function(input_signature=[spec])
    def explicit(x):
        return tf.nn.conv_transpose(x, filters, args["output_shape"], 2, args["padding"])

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [explicit.get_concrete_function()], explicit)
    with pytest.raises(Exception, match="ERROR_NEEDS_FLEX_OPS|neither a custom op nor a flex op"):
        converter.convert()
    result = convert.layer(filters, to="litert", **args)
    ops = _tflite_ops(result.target)
    assert "TRANSPOSE_CONV" in ops and not any(op.startswith("Flex") for op in ops)
    assert result.check.passed, result.check


def test_dilation_runs_on_tf_cpu_as_a_zero_dilated_kernel():
    """TF's CPU kernels reject dilation (tensorflow#69103): written as a zero-dilated kernel the
    layer runs, and equals the dilated PyTorch layer; without the option the check says why."""
    import torch
    layer = torch.nn.ConvTranspose2d(2, 3, 3, stride=1, dilation=(2, 3), padding=1,
                                     output_padding=(1, 2))
    plain = convert.layer(layer, to="tensorflow", input_shape=(4, 5))
    assert not plain.check.passed and "tensorflow#69103" in plain.check.reason
    for to in ("tensorflow", "keras", "litert"):
        result = convert.layer(layer, to=to, input_shape=(4, 5), zero_dilated_kernel=True)
        assert result.check.passed, (to, result.check)
        assert result.conversion.target.spec.dilation == (1, 1)
        assert result.weight.shape[:2] == (5, 7)                     # 2*(3-1)+1, 3*(3-1)+1


def test_wide_padding_is_exact_in_jax_and_flax_and_zeros_elsewhere(sources):
    """NNX padding=3 with k=3 keeps one cell before the full result: lax and Flax write the
    same padding (no crop), the others add the zero cell, with the bias on it."""
    obj, args = sources["flax nnx"]
    for to in TARGETS:
        result = convert.layer(obj, to=to, **args)
        assert result.conversion.source.outer == ((1, 0), (1, 0))
        wide = to in ("jax", "flax")
        assert result.conversion.exact == wide, (to, result.conversion.crop)
        if not wide:
            assert result.conversion.crop == ((-1, 0), (-1, 0))


def test_onnx_output_shape_past_the_full_result_is_zeros_at_the_end(sources):
    """test_convtranspose_output_shape: 9x7 of full result, then a row and a column of zeros
    (plus the bias) -- what onnxruntime computes."""
    obj, args = sources["onnx"]
    result = convert.layer(obj, to="torch", **args)
    assert result.conversion.source.windows == ((0, 10), (0, 8))
    assert result.output_shape == (1, 2, 10, 8)
    y = RNG.standard_normal((1, 1, 3, 3)).astype(np.float32)
    out = result(y)
    bias = result.bias
    np.testing.assert_allclose(out[0, :, 9, :], np.broadcast_to(bias[:, None], (2, 8)),
                               rtol=1e-6)


def test_missing_input_shape_and_foreign_objects_are_named():
    import torch
    with pytest.raises(ConvSpecError, match="does not know its input size"):
        convert.layer(torch.nn.ConvTranspose2d(1, 1, 3), to="onnx")
    with pytest.raises(ConvSpecError, match="tconv reads no layer of type"):
        convert.layer(object(), to="onnx")
    with pytest.raises(ConvSpecError, match="not Conv2d"):
        convert.layer(torch.nn.Conv2d(1, 1, 3), to="onnx", input_shape=(4, 4))
