"""onnx2tf: a plain SAME_UPPER ConvTranspose converts to models that fail.

X (1, 2, 2, 2), W (2, 3, 3, 3), strides 2, auto_pad SAME_UPPER: the output is 4x4 (X * stride),
pads (0, 1) in each dim. onnx2tf converts it, but the TensorFlow model fails in its oneDNN
kernel and the float32 .tflite fails to prepare ("computed_input_height != SizeOfDimension(input,
1) (3 != 2)"). The same layer written with explicit pads [0, 0, 1, 1] converts and runs right.

Needs numpy, onnx, onnx2tf (and what it imports: tensorflow, tf_keras, onnx_graphsurgeon,
sng4onnx, psutil) and ai_edge_litert. Exit 1 while the converted models fail or differ, 0 when
they agree. Found by `tconv sweep --backends onnx2tf`.
"""
import os
import sys
import tempfile

import numpy as np
import onnx2tf
from ai_edge_litert.interpreter import Interpreter
from onnx import helper, numpy_helper


def conv_transpose(g, w, stride, pads, dilation, output_padding, groups=1):
    """Plain loops: g (N, C, *o), w (C, M/groups, *k), pads [(begin, end)] per spatial dim.
    Every g cell adds g * w at o*stride + k*dilation - begin; output_padding adds zero cells."""
    n, c = g.shape[:2]
    per_group = w.shape[1]
    size = [(o - 1) * s + d * (k - 1) + 1 + op - lo - hi for o, k, s, d, op, (lo, hi) in
            zip(g.shape[2:], w.shape[2:], stride, dilation, output_padding, pads)]
    x = np.zeros((n, per_group * groups, *size))
    for b in range(n):
        for ci in range(c):
            group = ci // (c // groups)
            for mo in range(per_group):
                for o in np.ndindex(*g.shape[2:]):
                    for k in np.ndindex(*w.shape[2:]):
                        at = [oi * s + ki * d - lo for oi, ki, s, d, (lo, _) in
                              zip(o, k, stride, dilation, pads)]
                        if all(0 <= a < m for a, m in zip(at, size)):
                            x[(b, group * per_group + mo, *at)] += g[(b, ci, *o)] * w[(ci, mo, *k)]
    return x


def verdict(got, expected, what):
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected)
    print("expected", expected.shape, expected.ravel().tolist())
    print("got     ", got.shape, got.ravel().tolist())
    if got.shape == expected.shape and np.array_equal(got, expected):
        print("FIXED:", what)
        return 0
    print("DIFFERS:", what)
    return 1


def main():
    rng = np.random.default_rng(0)
    g = rng.integers(-3, 4, (1, 2, 2, 2)).astype(np.float32)
    w = rng.integers(-3, 4, (2, 3, 3, 3)).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], kernel_shape=[3, 3],
                            strides=[2, 2], auto_pad="SAME_UPPER")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", 1, [1, 2, 2, 2])],
                              [helper.make_tensor_value_info("Y", 1, [1, 3, 4, 4])],
                              initializer=[numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    expected = conv_transpose(g, w, [2, 2], [(0, 1), (0, 1)], [1, 1], [0, 0])
    folder = tempfile.mkdtemp()
    keras_model = onnx2tf.convert(onnx_graph=model, output_folder_path=folder, non_verbose=True)
    failed = 0
    try:
        got = np.transpose(np.asarray(keras_model(np.transpose(g, (0, 2, 3, 1)))), (0, 3, 1, 2))
        failed |= verdict(got, expected, "onnx2tf SAME_UPPER ConvTranspose, TensorFlow model")
    except Exception as error:
        print("DIFFERS: the TensorFlow model fails:", type(error).__name__,
              str(error).splitlines()[0][:200])
        failed = 1
    try:
        interpreter = Interpreter(model_path=os.path.join(folder, "model_float32.tflite"))
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                               np.transpose(g, (0, 2, 3, 1)))
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        failed |= verdict(np.transpose(got, (0, 3, 1, 2)), expected,
                          "onnx2tf SAME_UPPER ConvTranspose, .tflite")
    except Exception as error:
        print("DIFFERS: the .tflite fails:", str(error).splitlines()[0][:200])
        failed = 1
    return failed


if __name__ == "__main__":
    sys.exit(main())
