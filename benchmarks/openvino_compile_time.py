"""How long OpenVINO's CPU plugin takes to compile and first run one ConvolutionBackpropData.

    python benchmarks/openvino_compile_time.py

A 2-d node whose result is 4x4 (a 1x1 upstream gradient, a 3x3 kernel, padding 1,
output_padding 3): the work is
the same whatever the stride, yet the first inference (where the plugin builds its kernel) takes
time growing with the square of the last dim's stride, and not with the first's; at stride 10**9
compile_model itself does not return. Needs numpy and openvino (tconv only to import openvino
without its telemetry); prints one line per stride and the ratio to the first, all from one
run.
"""
from __future__ import annotations

import time

import numpy as np

from tconv.frameworks.openvino import _import_openvino

ov = _import_openvino()         # without its telemetry
import openvino.opset13 as ops  # noqa: E402

STRIDES = [(1, 2500), (1, 5000), (1, 10000), (1, 20000), (20000, 1)]


def seconds(stride) -> tuple[float, float]:
    """compile_model's time and the first inference's."""
    data = ops.parameter([1, 1, 1, 1], np.float32)
    filters = ops.constant(np.ones((1, 1, 3, 3), np.float32))
    node = ops.convolution_backprop_data(data, filters, list(stride), pads_begin=[1, 1],
                                         pads_end=[1, 1], output_padding=[3, 3])
    model = ov.Model([node], [data])
    start = time.perf_counter()
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    compiled_at = time.perf_counter()
    compiled([np.ones((1, 1, 1, 1), np.float32)])
    return compiled_at - start, time.perf_counter() - compiled_at


def main() -> None:
    print(f"openvino {ov.__version__}")
    first = None
    for stride in STRIDES:
        build, run = min(seconds(stride) for _ in range(2))
        first = first or run
        print(f"stride {str(stride):>11}: compile {build:6.3f} s, first inference {run:6.3f} s "
              f"({run / first:5.1f}x the first)")


if __name__ == "__main__":
    main()
