"""OpenVINO's ONNX frontend: ConvTranspose with output_shape and group > 1 splits the padding
the other way.

ONNX ConvTranspose with output_shape (auto_pad NOTSET) derives the total padding
total = stride*(X-1) + output_padding + K - output_shape and crops total - total//2 (the larger
half) at the start; onnxruntime does, and so does OpenVINO for group 1. With group 2 OpenVINO's
ONNX frontend crops total//2 at the start. Here X = [1, 2] per channel, W = 1, output_shape 1:
total 1, the start is cropped, x = [2] per channel; OpenVINO gives [1].

Needs numpy, onnx and openvino. Exit 1 while the results differ, 0 when they agree.
Found by `tconv sweep --backends openvino`; minimal spec: input (1, 2, 1), weight (2, 1, 1),
groups 2, padding (1, 0).
"""
import sys

import numpy as np
import onnx
import openvino as ov
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
    groups = 2
    g = np.array([[[1.0, 2.0]] * groups], np.float32)           # (N, C, o) = (1, 2, 2)
    w = np.ones((groups, 1, 1), np.float32)                       # (C, M/group, k)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], kernel_shape=[1], strides=[1],
                            group=groups, output_shape=[1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", 1, [1, 2, 2])],
                              [helper.make_tensor_value_info("Y", 1, None)],
                              initializer=[numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    core = ov.Core()
    compiled = core.compile_model(core.read_model(model.SerializeToString()), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled([g])[0]
    # total = 1*(2-1) + 0 + 1 - 1 = 1: crop total - total//2 = 1 at the start, 0 at the end
    expected = conv_transpose(g, w, [1], [(1, 0)], [1], [0], groups=groups)
    return verdict(got, expected, "OpenVINO ONNX ConvTranspose output_shape, group 2")


if __name__ == "__main__":
    sys.exit(main())
