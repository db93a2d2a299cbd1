"""onnx2torch ignores ConvTranspose's output_shape.

With output_shape (auto_pad NOTSET) ONNX derives the padding: total = stride*(X-1) +
output_padding + K - output_shape, total - total//2 cropped at the start (onnxruntime does). The
module onnx2torch writes returns the uncropped result: X = [3, 5], W = [2], output_shape 1 gives
total 1, x = [10]; onnx2torch gives [6, 10].

Needs numpy, onnx, torch and onnx2torch (with a torchvision that imports). Exit 1 while the
results differ, 0 when they agree.
Found by `tconv sweep --backends onnx2torch`; minimal spec: input (1, 1, 1), weight (1, 1, 1),
padding (1, 0).
"""
import sys

import numpy as np
import torch
from onnx import helper, numpy_helper
from onnx2torch import convert


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
    g = np.array([[[3.0, 5.0]]], np.float32)
    w = np.array([[[2.0]]], np.float32)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], kernel_shape=[1], strides=[1],
                            output_shape=[1])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", 1, [1, 1, 2])],
                              [helper.make_tensor_value_info("Y", 1, None)],
                              initializer=[numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    with torch.no_grad():
        got = convert(model)(torch.from_numpy(g)).numpy()
    expected = conv_transpose(g, w, [1], [(1, 0)], [1], [0])
    return verdict(got, expected, "onnx2torch ConvTranspose with output_shape")


if __name__ == "__main__":
    sys.exit(main())
