"""OpenVINO ConvolutionBackpropData: output_padding >= stride with pads_begin > 0 keeps the wrong
cell.

ConvolutionBackpropData computes size = stride*(X-1) + K + output_padding - pads_begin - pads_end:
the full result, output_padding zero cells added at the end, pads_begin cells cropped at the
start. OpenVINO accepts output_padding >= stride (PyTorch allows it below the dilation) and is
right with pads_begin 0. With g = [3], w = [2], dilation 2 (K = 1), output_padding 1 and
pads_begin 1 the full result is [6] + [0], cropped by one at the start: [0]. OpenVINO gives [6].

Needs numpy and openvino. Exit 1 while the results differ, 0 when they agree.
Found by `tconv sweep --backends openvino`; minimal spec: input (1, 1, 1), weight (1, 1, 1),
dilation 2, padding (1, 0), output_padding 1.
"""
import sys

import numpy as np
import openvino as ov
import openvino.opset13 as ops


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
    g = np.array([[[3.0]]], np.float32)
    w = np.array([[[2.0]]], np.float32)
    data = ops.parameter([1, 1, 1], np.float32)
    node = ops.convolution_backprop_data(data, ops.constant(w), strides=[1], pads_begin=[1],
                                         pads_end=[0], dilations=[2], output_padding=[1])
    compiled = ov.Core().compile_model(ov.Model([node], [data]), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled([g])[0]
    expected = conv_transpose(g, w, [1], [(1, 0)], [2], [1])
    return verdict(got, expected, "OpenVINO ConvolutionBackpropData, output_padding >= stride")


if __name__ == "__main__":
    sys.exit(main())
