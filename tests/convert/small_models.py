"""Three small models with transposed convolutions, in torch, Keras and ONNX: a DCGAN-style
generator, a U-Net decoder (a skip branch concatenated) and a 1-d audio decoder. Random weights
and biases; sizes small enough for a test.

Each builder returns the model and the input shape it takes (in its layout), and the number of
transposed convolutions in it.
"""
import numpy as np

SEED = 7


def _rng():
    return np.random.default_rng(SEED)


# -- torch ------------------------------------------------------------------------------------

def _randomise_torch(model):
    import torch

    rng = _rng()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)
                                     * 0.5))
    return model.eval()


def torch_dcgan():
    from torch import nn

    net = nn.Sequential(
        nn.ConvTranspose2d(8, 8, 4, 1, 0), nn.BatchNorm2d(8), nn.ReLU(),     # 1x1 -> 4x4
        nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(),                        # -> 8x8
        nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.Tanh())                        # -> 16x16
    return _randomise_torch(net), (1, 8, 1, 1), 3


try:
    from torch import nn
except ImportError:          # pragma: no cover
    nn = None

if nn is not None:
    class UNetDecoder(nn.Module):
        """Up by 2, concatenate a skip branch, convolve, up by 2 with output_padding."""

        def __init__(self):
            super().__init__()
            self.up1 = nn.ConvTranspose2d(16, 8, 2, 2)                         # 4 -> 8
            self.skip = nn.ConvTranspose2d(16, 8, 3, 2, padding=1, output_padding=1)
            self.mix = nn.Conv2d(16, 8, 3, padding=1)
            self.up2 = nn.ConvTranspose2d(8, 4, 3, 2, padding=1, output_padding=1)  # 8 -> 16

        def forward(self, x):
            import torch

            y = torch.cat([self.up1(x), self.skip(x)], dim=1)
            return self.up2(torch.relu(self.mix(y)))


def torch_unet():
    return _randomise_torch(UNetDecoder()), (1, 16, 4, 4), 3


def torch_audio():
    from torch import nn

    net = nn.Sequential(
        nn.ConvTranspose1d(8, 4, 8, 4, 2), nn.ReLU(),                        # 16 -> 64
        nn.ConvTranspose1d(4, 1, 4, 2, 1), nn.Tanh())                        # -> 128
    return _randomise_torch(net), (1, 8, 16), 2


# -- Keras ------------------------------------------------------------------------------------

def _randomise_keras(model):
    rng = _rng()
    for layer in model.layers:
        weights = layer.get_weights()
        if weights and not type(layer).__name__.startswith("BatchNorm"):
            layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5
                               for w in weights])
    return model


def keras_dcgan():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((1, 1, 8)),
        layers.Conv2DTranspose(8, 4, 1, "valid"), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2DTranspose(4, 4, 2, "same", activation="relu"),
        layers.Conv2DTranspose(3, 5, 2, "same", activation="tanh")], name="generator")
    return _randomise_keras(model), (1, 1, 1, 8), 3


def keras_unet():
    import keras
    from keras import layers

    x = keras.Input((4, 4, 16))
    up = layers.Conv2DTranspose(8, 2, 2)(x)
    skip = layers.Conv2DTranspose(8, 3, 2, "same")(x)
    mixed = layers.Conv2D(8, 3, padding="same", activation="relu")(
        layers.Concatenate()([up, skip]))
    out = layers.Conv2DTranspose(4, 3, 2, "valid", output_padding=1)(mixed)
    return _randomise_keras(keras.Model(x, out, name="unet_decoder")), (1, 4, 4, 16), 3


def keras_audio():
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input((16, 8)),
        layers.Conv1DTranspose(4, 8, 4, "same", activation="relu"),
        layers.Conv1DTranspose(1, 4, 2, "same", activation="tanh")], name="audio_decoder")
    return _randomise_keras(model), (1, 16, 8), 2


# -- ONNX -------------------------------------------------------------------------------------

def _onnx_model(nodes, arrays, x_shape, name):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                    ["N", *x_shape[1:]])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(a, n) for n, a in arrays.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _weights(**shapes):
    rng = _rng()
    return {n: (rng.standard_normal(s) * 0.5).astype(np.float32) for n, s in shapes.items()}


def onnx_dcgan():
    from onnx import helper

    arrays = _weights(w1=(8, 8, 4, 4), b1=(8,), w2=(8, 4, 4, 4), b2=(4,), w3=(4, 3, 4, 4),
                      b3=(3,))
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w1", "b1"], ["t1"], name="up1",
                         kernel_shape=[4, 4]),
        helper.make_node("Relu", ["t1"], ["r1"]),
        helper.make_node("ConvTranspose", ["r1", "w2", "b2"], ["t2"], name="up2",
                         strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["t2"], ["r2"]),
        helper.make_node("ConvTranspose", ["r2", "w3", "b3"], ["t3"], name="up3",
                         strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("Tanh", ["t3"], ["y"])]
    return _onnx_model(nodes, arrays, (1, 8, 1, 1), "generator"), (1, 8, 1, 1), 3


def onnx_unet():
    from onnx import helper

    arrays = _weights(w1=(16, 8, 2, 2), b1=(8,), ws=(16, 8, 3, 3), bs=(8,), wm=(8, 16, 1, 1),
                      w2=(8, 4, 3, 3), b2=(4,))
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w1", "b1"], ["u"], name="up1", strides=[2, 2]),
        helper.make_node("ConvTranspose", ["x", "ws", "bs"], ["s"], name="skip", strides=[2, 2],
                         pads=[0, 0, 1, 1]),               # end-heavy pads: onnx2torch#68
        helper.make_node("Concat", ["u", "s"], ["c"], axis=1),
        helper.make_node("Conv", ["c", "wm"], ["m"]),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("ConvTranspose", ["r", "w2", "b2"], ["y"], name="up2", strides=[2, 2],
                         output_shape=[17, 17])]           # past the full result: one zero row
    return _onnx_model(nodes, arrays, (1, 16, 4, 4), "unet_decoder"), (1, 16, 4, 4), 3


def onnx_audio():
    from onnx import helper

    arrays = _weights(w1=(8, 4, 8), b1=(4,), w2=(4, 1, 4), b2=(1,))
    nodes = [
        helper.make_node("ConvTranspose", ["x", "w1", "b1"], ["t1"], name="up1", strides=[4],
                         pads=[2, 2]),
        helper.make_node("Relu", ["t1"], ["r1"]),
        helper.make_node("ConvTranspose", ["r1", "w2", "b2"], ["t2"], name="up2", strides=[2],
                         pads=[1, 1]),
        helper.make_node("Tanh", ["t2"], ["y"])]
    return _onnx_model(nodes, arrays, (1, 8, 16), "audio_decoder"), (1, 8, 16), 2


BUILDERS = {
    ("torch", "dcgan"): torch_dcgan, ("torch", "unet"): torch_unet,
    ("torch", "audio"): torch_audio,
    ("keras", "dcgan"): keras_dcgan, ("keras", "unet"): keras_unet,
    ("keras", "audio"): keras_audio,
    ("onnx", "dcgan"): onnx_dcgan, ("onnx", "unet"): onnx_unet, ("onnx", "audio"): onnx_audio,
}
SUFFIX = {"torch": ".pt", "keras": ".keras", "onnx": ".onnx"}


def save(framework: str, name: str, directory):
    """Build the model and write it to ``directory``: ``(path, model, input_shape, count)``."""
    model, shape, count = BUILDERS[framework, name]()
    path = directory / f"{name}{SUFFIX[framework]}"
    if framework == "torch":
        import torch

        torch.save(model, path)
    elif framework == "keras":
        model.save(path)
    else:
        import onnx

        onnx.save(model, str(path))
    return path, model, shape, count
