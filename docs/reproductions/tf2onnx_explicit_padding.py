"""tf2onnx ignores the padding of tf.nn.conv2d_transpose when the output shape is constant.

For Conv2DBackpropInput with a constant output_shape tf2onnx derives ONNX pads from the output
size, total // 2 at the start: TensorFlow's 'SAME' split, whatever the op's padding says. With
explicit padding [[0, 0], [1, 0], [0, 0], [0, 0]] (crop one row at the top) the converted model
crops the bottom row instead. The same derivation gives 'VALID' with an output_shape one row
above the minimum (TF's way of saying output_padding 1) a total padding of -1: pads (0, -1),
which onnxruntime refuses.

Needs numpy, tensorflow, tf2onnx and onnxruntime. Exit 1 while the results differ, 0 when they
agree. Found by `tconv sweep --backends tf2onnx`; minimal spec: input (1, 1, 3, 4), weight
(1, 1, 2, 2), stride 2, padding ((1, 0), (0, 0)).
"""
import sys

import numpy as np
import onnxruntime as ort
import tensorflow as tf
import tf2onnx


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
    g = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2)          # NCHW
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)              # (C_in, C_out, kh, kw)
    filters = np.transpose(w, (2, 3, 1, 0))                              # [kh, kw, out, in]
    signature = [tf.TensorSpec([1, 2, 2, 1], tf.float32, name="g")]

    @tf.function(input_signature=signature)
    def layer(x):
        return tf.nn.conv2d_transpose(x, tf.constant(filters), [1, 3, 4, 1], strides=2,
                                      padding=[[0, 0], [1, 0], [0, 0], [0, 0]])

    model, _ = tf2onnx.convert.from_function(layer, input_signature=signature)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {model.graph.input[0].name: np.transpose(g, (0, 2, 3, 1))})[0]
    got = np.transpose(got, (0, 3, 1, 2))
    expected = conv_transpose(g, w, [2, 2], [(1, 0), (0, 0)], [1, 1], [0, 0])
    failed = verdict(got, expected, "tf2onnx conv2d_transpose with explicit padding")

    @tf.function(input_signature=signature)
    def valid(x):   # 'VALID', output 5x5: one row and column more than the minimal 4x4
        return tf.nn.conv2d_transpose(x, tf.constant(filters), [1, 5, 5, 1], strides=2,
                                      padding="VALID")

    model, _ = tf2onnx.convert.from_function(valid, input_signature=signature)
    expected = conv_transpose(g, w, [2, 2], [(0, 0), (0, 0)], [1, 1], [1, 1])
    try:
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        got = session.run(None, {model.graph.input[0].name: np.transpose(g, (0, 2, 3, 1))})[0]
    except Exception as error:
        print("DIFFERS: tf2onnx conv2d_transpose 'VALID' with a larger output_shape: onnxruntime "
              "fails:", str(error).splitlines()[0][:200])
        return 1
    return failed | verdict(np.transpose(got, (0, 3, 1, 2)), expected,
                            "tf2onnx conv2d_transpose 'VALID' with a larger output_shape")

if __name__ == "__main__":
    sys.exit(main())
