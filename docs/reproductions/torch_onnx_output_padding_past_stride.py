"""torch.onnx.export writes PyTorch's output_padding >= stride, which onnxruntime refuses.

PyTorch allows output_padding < max(stride, dilation): nn.ConvTranspose1d(1, 1, 1, dilation=2,
output_padding=1) maps g = [3, 5] to [6, 10, 0]. Both exporters write the ConvTranspose node as
is; onnxruntime refuses it ("output_padding may be too large for stride"), known as
onnxruntime#14208 (ONNX's text says "less than the corresponding stride/dilation", onnx#3187).

Needs numpy, torch (with onnxscript for dynamo=True) and onnxruntime. Exit 1 while an exported
model fails or differs, 0 when both agree.
"""
import io
import sys

import numpy as np
import onnxruntime as ort
import torch

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
    layer = torch.nn.ConvTranspose1d(1, 1, 1, dilation=2, output_padding=1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(2.0)
    g = np.array([[[3.0, 5.0]]], np.float32)
    expected = conv_transpose(g, np.array([[[2.0]]]), [1], [(0, 0)], [2], [1])
    failed = 0
    for dynamo in (False, True):
        if dynamo:
            model = torch.onnx.export(layer, (torch.from_numpy(g),), dynamo=True,
                                      input_names=["g"]).model_proto.SerializeToString()
        else:
            buffer = io.BytesIO()
            torch.onnx.export(layer, (torch.from_numpy(g),), buffer, dynamo=False,
                              input_names=["g"])
            model = buffer.getvalue()
        try:
            session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            got = session.run(None, {"g": g})[0]
        except Exception as error:
            print(f"DIFFERS: dynamo={dynamo}: onnxruntime fails:",
                  str(error).split("Status Message: ")[-1].splitlines()[0])
            failed = 1
            continue
        failed |= verdict(got, expected, f"torch.onnx.export(dynamo={dynamo}) -> onnxruntime")
    return failed


if __name__ == "__main__":
    sys.exit(main())
