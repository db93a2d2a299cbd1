"""OpenVINO: ``ConvolutionBackpropData`` built with the opset API, and ONNX ``ConvTranspose`` read
by OpenVINO's ONNX frontend; both compiled for the CPU plugin.

``ConvolutionBackpropData(data, filters[, output_shape])`` is the transposed convolution: ``data``
is the upstream gradient ``g`` ``(N, C_out, *o)``, ``filters`` the forward weight unchanged
``(C_out, C_in, *k)`` (OpenVINO's ``[C_IN, C_OUT, *k]`` of the backprop op), the result is dL/dx
``(N, C_in, *in)``. With groups, ``GroupConvolutionBackpropData`` takes the filters as
``[G, C_out/G, C_in/G, *k]``, a reshape of the same array. Per spatial dim, with
``K = dilation*(k-1) + 1`` (OpenVINO's shape inference, ``append_spatial_shape``)::

    size = stride*(o - 1) + K + output_padding - pads_begin - pads_end

so the explicit form (``opset pads``) is ``pads_begin = lo``, ``pads_end = hi``,
``output_padding = op``, exactly like ONNX. With the ``output_shape`` input the pads are derived
(``apply_auto_pad``): ``total = stride*(o - 1) + K - output_shape + output_padding`` (clamped at
0); ``SAME_LOWER`` puts ``total // 2`` at the start, ``SAME_UPPER`` the larger half
``total - total // 2`` at the start; ``output_padding < stride`` only moves that split
(``opset output_shape``). Without ``output_shape`` the auto_pad modes pad nothing, so they add no
way of their own.

The ONNX frontend ways run the node :mod:`tconv.frameworks.onnx` builds in each of its
three forms (``pads``, ``output_shape``, ``auto_pad``), with the weight as an initializer as in
an exported model, through ``Core.read_model``: they check the frontend's translation of
ONNX's attributes (openvinotoolkit/openvino#31007: SAME_UPPER without output_shape gave the
wrong size until PR #32608).

Two differences found by ``tconv sweep`` are reported as :class:`KnownDifference` in their
region, each with a reproduction in ``docs/reproductions/``: the explicit form with
``output_padding >= stride`` and ``pads_begin > 0`` keeps the wrong cells, and the ONNX
frontend's ``output_shape`` with ``group > 1`` splits an odd total padding the other way.

Precision. On CPUs with bfloat16 units the CPU plugin's default ``INFERENCE_PRECISION_HINT`` is
``bf16``: float32 models are computed in bfloat16 unless asked otherwise. These ways ask for
``f32`` (the precision of the data), which is what a user comparing with another framework sets.
float16 data is computed in float32 and rounded once; a float64 model runs, but in f32 (the
plugin converts its precision), so float64 is not expressible.
The explicit form accepts ``output_padding >= stride`` (up to the dilation, as PyTorch does).

Time. The CPU plugin's first inference of a 2-d ``ConvolutionBackpropData`` (where it builds
its kernel) takes time growing with the square of the last dim's stride, whatever the sizes (1-d,
3-d and the first dim's stride are not affected): for a 4x4 result, about 0.5 s at stride
10,000 and 1.9 s at 20,000 (openvino 2026.4.1; ``benchmarks/openvino_compile_time.py``); at
stride 10**9 ``compile_model`` does not return, so ``tconv verify --stride 1000000000`` never
ended.
Above :data:`SLOW_WIDTH_STRIDE` these ways are not run and say why.
"""
from __future__ import annotations

import functools
import sys
import threading

import numpy as np

from ..spec import ConvSpec
from . import EMPTY_BATCH, Framework, KnownDifference, NotExpressible, Refused, first_line
from .onnx import FORMS, expressible, model_with_weight, output_padding_giving


_DTYPES = ("float16", "float32")
#: Found by tconv's sweep, not reported upstream yet; each has a reproduction.
OUTPUT_PADDING_BUG = (
    "new (docs/reproductions/openvino_output_padding_past_stride.py): with output_padding >= "
    "stride (allowed below the dilation) and pads_begin > 0, ConvolutionBackpropData keeps the "
    "wrong cells")
GROUP_OUTPUT_SHAPE_BUG = (
    "new (docs/reproductions/openvino_onnx_group_output_shape.py): the ONNX frontend's "
    "ConvTranspose with output_shape and group > 1 crops total//2 at the start, not "
    "total - total//2 as the ONNX text, onnxruntime and group 1 do")
_OPSET_FORMS = ("pads", "output_shape")
#: The largest last-dim stride of a 2-d spec these ways run (milliseconds).
SLOW_WIDTH_STRIDE = 1024


_IMPORT_LOCK = threading.Lock()


def _import_openvino():
    """``import openvino``, without its telemetry.

    The import starts openvino_telemetry, which counts "no consent file" as consent: it writes
    a client ID under ``~/intel`` and sends a Google Analytics event from a forked process
    (with JAX loaded, Python warns that the fork may deadlock); its documented opt-out writes a
    file in the user's home. OpenVINO's own modules fall back to a stub of it when it cannot
    be imported, so tconv hides the package while openvino is imported: the stub then serves
    every later use in the process (``convert_model`` too), no environment variable is
    touched, and the package is importable again afterwards. If openvino was imported before
    tconv needed it, its telemetry is what that import left.
    """
    with _IMPORT_LOCK:
        if "openvino" in sys.modules:
            return sys.modules["openvino"]
        saved = sys.modules.get("openvino_telemetry")
        sys.modules["openvino_telemetry"] = None      # import openvino_telemetry: ImportError
        try:
            import openvino
        finally:
            if saved is None:
                del sys.modules["openvino_telemetry"]
            else:
                sys.modules["openvino_telemetry"] = saved
        return openvino


@functools.lru_cache(maxsize=1)
def _core():
    ov = _import_openvino()

    core = ov.Core()
    core.set_property("CPU", {"INFERENCE_NUM_THREADS": 1})
    return core


def _compile(model):
    return _core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def _run(compiled, g: np.ndarray) -> np.ndarray:
    return np.asarray(compiled([g])[0])


# -- the opset forms ------------------------------------------------------------------------------

def _opset_attributes(spec: ConvSpec, form: str):
    """``(kwargs, None)`` for ``convolution_backprop_data``, or ``(None, reason)``."""
    if form == "pads":
        return dict(pads_begin=[lo for lo, _ in spec.padding],
                    pads_end=[hi for _, hi in spec.padding],
                    output_padding=list(spec.output_padding)), None
    # output_shape = input size: choose auto_pad and output_padding (< stride) giving lo
    for mode, at_start in (("same_lower", False), ("same_upper", True)):
        ops = []
        for o, n, (lo, _), op, s, e in zip(spec.output_size, spec.input_size, spec.padding,
                                           spec.output_padding, spec.stride, spec.extents):
            full = (o - 1) * s + e
            cand = output_padding_giving(lo, full - n, s, at_start, op % s)
            if cand is None:
                break
            ops.append(cand)
        else:
            return dict(auto_pad=mode, output_padding=ops,
                        output_shape=list(spec.input_size)), None
    return None, (
        f"with output_shape the total padding stride*(o-1) + K - output_shape + output_padding "
        f"(output_padding < stride) is split in halves, the larger at the start (same_upper) or "
        f"at the end (same_lower); no choice gives the spec's padding {spec.padding}")


def _opset_model(spec: ConvSpec, w: np.ndarray, dtype: np.dtype, kwargs: dict):
    ov = _import_openvino()
    import openvino.opset13 as ops

    data = ops.parameter(list(spec.output_shape), dtype, name="g")
    if spec.groups == 1:
        filters = ops.constant(np.ascontiguousarray(w))
        build = ops.convolution_backprop_data
    else:
        g = spec.groups
        filters = ops.constant(np.ascontiguousarray(
            w.reshape((g, spec.out_channels // g) + w.shape[1:])))
        build = ops.group_convolution_backprop_data
    kwargs = dict(kwargs)
    shape = kwargs.pop("output_shape", None)
    if shape is not None:
        shape = ops.constant(np.array(shape, dtype=np.int64))
    node = build(data, filters, strides=list(spec.stride), output_shape=shape,
                 dilations=list(spec.dilation), **kwargs)
    return ov.Model([node], [data], "tconv_conv_transpose")


# -- the ways ---------------------------------------------------------------------------------

class OpenVino(Framework):
    """OpenVINO's CPU plugin: ConvolutionBackpropData from its opset API, and the ONNX node
    through its frontend."""

    name = "openvino"
    title = "OpenVINO"
    packages = ("openvino", "onnx")
    rank = 50

    ways = (*(f"openvino opset {form}" for form in _OPSET_FORMS),
            *(f"openvino ONNX frontend {form}" for form in FORMS))

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` by OpenVINO's CPU plugin, each form; see the module docstring.

        ``g`` is ``spec.output_shape``, ``w`` the forward weight; each result is
        ``spec.input_shape`` in ``g``'s dtype.
        """
        names = OpenVino.way_names(spec.ndim)
        dtype = np.dtype(g.dtype)
        if dtype.name not in _DTYPES:
            why = ("OpenVINO's CPU plugin runs an f64 model in f32 (it converts the precision; the "
                   "error is float32's)" if dtype.name == "float64" else
                   f"OpenVINO's CPU plugin computes floats; the data is {dtype.name}")
            return dict.fromkeys(names, NotExpressible(why))
        if spec.ndim > 3:
            return dict.fromkeys(names, NotExpressible(
                f"OpenVINO's ConvolutionBackpropData is 1-d, 2-d or 3-d; this spec has "
                f"{spec.ndim}"))
        if spec.batch == 0:
            return dict.fromkeys(names, NotExpressible(EMPTY_BATCH))
        if spec.ndim == 2 and spec.stride[-1] > SLOW_WIDTH_STRIDE:
            return dict.fromkeys(names, NotExpressible(
                f"not run: OpenVINO's CPU plugin runs a 2-d ConvolutionBackpropData first in time "
                f"growing with the square of the last stride (0.5 s at 10,000); this spec's is "
                f"{spec.stride[-1]}, tconv runs up to {SLOW_WIDTH_STRIDE}"))
        g = np.ascontiguousarray(g)
        w = np.ascontiguousarray(w, dtype=dtype)
        result = {}
        for form, name, kwargs in expressible(spec, _OPSET_FORMS, names, result,
                                              _opset_attributes):
            try:
                out = _run(_compile(_opset_model(spec, w, dtype, kwargs)), g)
            except Exception as error:  # OpenVINO refuses the node: its answer, not a crash
                result[name] = Refused(f"OpenVINO: {first_line(error)}")
                continue
            out = out.astype(dtype, copy=False)
            result[name] = (KnownDifference(OUTPUT_PADDING_BUG, out) if form == "pads" and any(
                op >= s for op, s in zip(spec.output_padding, spec.stride)) else out)
        for form, name, attrs in expressible(spec, FORMS, names[len(_OPSET_FORMS):], result):
            model = model_with_weight(attrs, spec.output_shape, w)
            try:
                out = _run(_compile(_core().read_model(model.SerializeToString())), g)
            except Exception as error:
                result[name] = Refused(f"OpenVINO: {first_line(error)}")
                continue
            out = out.astype(dtype, copy=False)
            result[name] = (KnownDifference(GROUP_OUTPUT_SHAPE_BUG, out)
                            if form == "output_shape" and spec.groups > 1 else out)
        return result

