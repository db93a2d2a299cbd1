"""nobuco: a transposed convolution whose kernel is shorter than the stride gives extra cells.

nn.ConvTranspose1d(1, 1, kernel_size=1, stride=2) maps 1 cell to (1-1)*2 + 1 = 1 cell. The
Keras model nobuco writes returns 2 (Keras' 'valid' transposed size is input * stride when the
kernel is shorter than the stride): [6, 0] for g = [3], w = [2], where PyTorch gives [6]. 2-d
layers do the same (a 2x2 input, kernel 1, stride 2 gives 4x4 instead of 3x3).

Needs numpy, torch and nobuco, which needs Keras 2 (tf_keras, imported as keras). Exit 1 while the
results differ, 0 when they agree. Found by `tconv sweep --backends nobuco`; minimal spec: input
(1, 1, 1), weight (1, 1, 1), stride 2.
"""
import sys

import numpy as np
import nobuco
import torch
from nobuco import ChannelOrder


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
    layer = torch.nn.ConvTranspose1d(1, 1, kernel_size=1, stride=2, bias=False)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    g = np.array([[[3.0]]], np.float32)
    keras_model = nobuco.pytorch_to_keras(layer, args=[torch.from_numpy(g)],
                                          inputs_channel_order=ChannelOrder.PYTORCH,
                                          outputs_channel_order=ChannelOrder.PYTORCH)
    got = np.asarray(keras_model(g))
    expected = conv_transpose(g, np.array([[[2.0]]]), [2], [(0, 0)], [1], [0])
    return verdict(got, expected, "nobuco ConvTranspose1d, kernel 1 < stride 2")


if __name__ == "__main__":
    sys.exit(main())
