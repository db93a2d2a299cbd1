"""TensorFlow: ``tf.GradientTape``, ``tf.nn.conv{1,2,3}d_transpose`` and the depthwise gradient.

TensorFlow's conventions, translated here and nowhere else:

- Data is channels-last, ``(N, *spatial, C)`` ("NWC", "NHWC", "NDHWC"). The CPU kernels of the
  input gradient (``Conv2DBackpropInput``) refuse channels-first: "only supports NHWC".
- The forward filter is ``[*k, C_in/groups, C_out]``. The filter of ``conv{N}d_transpose`` is
  documented as ``[*k, output_channels, in_channels]`` of the *transposed* op, which is the same
  array: both are ``w`` of ``(C_out, C_in/groups, *k)`` with its axes reversed to ``(*k, 1, 0)``.
  The depthwise filter is ``[kh, kw, C_in, multiplier]``, output channel ``c * multiplier + m``.
- Padding is ``'VALID'`` (none), ``'SAME'`` (output ``ceil(in / stride)``, total padding
  ``max((out - 1) * stride + K - in, 0)`` with the odd cell at the end) or, in 2-d only, explicit
  ``[[0, 0], [lo, hi], [lo, hi], [0, 0]]``. The transposed ops take ``output_shape`` instead of
  ``output_padding``: it must be one of the ``stride`` input sizes the forward convolution maps to
  the size of ``g``, and picks among them.

The limits of the installed CPU kernels (TF 2.21), each a ``NotExpressible`` with the reason:
the input-gradient kernels reject dilation > 1 (tensorflow#69103) and groups > 1;
``tf.nn.convolution`` rejects strides > 1 together with dilations > 1; the CPU ``Conv3D`` has
neither groups nor dilation; dtypes are half, bfloat16, float, double, plus int32 for the 2-d
(and, through it, 1-d) ``Conv2DBackpropInput``; 1 to 3 spatial dims. All ways run on the CPU
device, so these reasons hold whatever accelerators the machine has.
"""
from __future__ import annotations

import os

import numpy as np

from ..spec import ConvSpec
from . import NotExpressible

NAME = "tensorflow"

_FLOATS = ("bfloat16", "float16", "float32", "float64")  # bfloat16 through ml_dtypes
_FORMATS = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
#: intra-op threads at most: tconv's arrays are small, and sweeps run several workers at once.
_MAX_THREADS = 4
_configured = False



def way_names(ndim: int) -> list[str]:
    return ["tf.GradientTape(tf.nn.convolution)", f"tf.nn.conv{ndim}d_transpose",
            f"tf.nn.conv{ndim}d_transpose VALID + crop", "tf.nn.depthwise_conv2d_backprop_input"]


def import_tf():
    """Import TensorFlow quietly; on first use, keep its thread pools small and let it take a
    GPU's memory only as needed (the ways themselves run on the CPU)."""
    global _configured
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if not _configured:
        _configured = True
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:                      # not on Linux
            cpus = os.cpu_count() or 1
        try:
            # eager ops run one at a time: the inter-op pool would only add idle threads
            tf.config.threading.set_inter_op_parallelism_threads(1)
            if "TF_NUM_INTRAOP_THREADS" not in os.environ:   # else TensorFlow reads it
                tf.config.threading.set_intra_op_parallelism_threads(min(cpus, _MAX_THREADS))
        except RuntimeError:
            pass                                    # TF already running: keep the user's settings
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)  # don't reserve it all
            except RuntimeError:
                pass
    return tf


# -- layouts ----------------------------------------------------------------------------------

def _channels_last(a: np.ndarray) -> np.ndarray:
    """``(N, C, *spatial)`` -> ``(N, *spatial, C)``."""
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def _channels_first(a: np.ndarray) -> np.ndarray:
    """``(N, *spatial, C)`` -> ``(N, C, *spatial)``."""
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def _tf_filter(w: np.ndarray) -> np.ndarray:
    """``(C_out, C_in/groups, *k)`` -> ``[*k, C_in/groups, C_out]`` (conv and conv_transpose)."""
    return np.ascontiguousarray(np.transpose(w, tuple(range(2, w.ndim)) + (1, 0)))


def _depthwise_filter(w: np.ndarray, in_channels: int) -> np.ndarray:
    """``(C_in * mult, 1, kh, kw)`` -> ``[kh, kw, C_in, mult]``: output channel ``c * mult + m``."""
    kh, kw = w.shape[2:]
    return np.ascontiguousarray(w.reshape(in_channels, -1, kh, kw).transpose(2, 3, 0, 1))


def _nhwc_shape(shape: tuple[int, ...]) -> list[int]:
    return [shape[0], *shape[2:], shape[1]]


# -- which TF padding expresses the spec ---------------------------------------------------------

def _tf_padding(spec: ConvSpec):
    """``'VALID'``, ``'SAME'``, explicit per-dim pairs (a list), or None if only a list would do.

    'SAME' is TF's rule, which is tconv's ``padding="same"``: output ``ceil(in / stride)``, the
    odd cell of padding at the end. Explicit pairs are returned whenever neither string fits.
    """
    if all(p == (0, 0) for p in spec.padding):
        return "VALID"
    same = ConvSpec.forward(spec.input_shape, spec.weight_shape, stride=spec.stride,
                            padding="same", dilation=spec.dilation, groups=spec.groups)
    if same.padding == spec.padding and same.output_size == spec.output_size:
        return "SAME"
    return [list(p) for p in spec.padding]


def _unreached_rows(spec: ConvSpec) -> NotExpressible | None:
    """TF's transposed ops accept only an ``output_shape`` whose forward output is ``g``'s size."""
    if any(op >= s for op, s in zip(spec.output_padding, spec.stride)):
        return NotExpressible(
            f"output_shape {spec.input_size} is not a size whose forward convolution has "
            f"{spec.output_size} outputs (output_padding {spec.output_padding} >= stride "
            f"{spec.stride}); TF checks out_backprop against it")
    return None


def _backprop_limits(spec: ConvSpec, dtype: str) -> NotExpressible | None:
    """Why ``Conv2DBackpropInput`` / ``Conv3DBackpropInputV2`` on CPU cannot run the spec."""
    op = "Conv3DBackpropInputV2" if spec.ndim == 3 else "Conv2DBackpropInput"
    if dtype not in _FLOATS and not (dtype == "int32" and spec.ndim < 3):
        kinds = "half, bfloat16, float, double" + (", int32" if spec.ndim < 3 else "")
        return NotExpressible(f"{op} takes {kinds}, not {dtype}")
    if any(d > 1 for d in spec.dilation):
        return NotExpressible(
            f"the CPU kernel of {op} rejects dilation {spec.dilation}: 'Current CPU "
            f"implementations do not yet support dilation rates larger than 1' "
            f"(tensorflow#69103)")
    if spec.groups > 1:
        if spec.ndim == 3:
            return NotExpressible(
                f"{op} has no grouped convolution (filter channels must equal the input "
                f"channels); groups={spec.groups}")
        return NotExpressible(
            f"the CPU kernel of {op} rejects groups={spec.groups}: 'Gradients for grouped "
            f"convolutions are not supported on CPU'")
    return _unreached_rows(spec)


# -- the ways ---------------------------------------------------------------------------------

def _tape_limits(spec: ConvSpec, dtype: str) -> NotExpressible | None:
    if dtype not in _FLOATS:
        return NotExpressible(
            f"tf.GradientTape differentiates floating tensors only (the gradient of a {dtype} "
            f"input is None)")
    strided = any(s > 1 for s in spec.stride)
    dilated = any(d > 1 for d in spec.dilation)
    if spec.groups > 1:
        if spec.ndim == 3:
            return NotExpressible(
                f"the CPU Conv3D kernel has no grouped convolution (filter channels must equal "
                f"the input channels); groups={spec.groups}")
        return NotExpressible(
            f"the gradient of a grouped convolution, Conv2DBackpropInput with groups="
            f"{spec.groups}, is rejected on CPU: 'Gradients for grouped convolutions are not "
            f"supported on CPU'")
    if strided and dilated:
        direct = ("tf.nn.conv3d on CPU rejects dilation > 1 ('CPU implementation of Conv3D "
                  "currently only supports dilated rates of 1')" if spec.ndim == 3 else
                  f"tf.nn.conv{spec.ndim}d accepts both, but its gradient Conv2DBackpropInput "
                  f"rejects dilation > 1 on CPU (tensorflow#69103)")
        return NotExpressible(
            f"tf.nn.convolution rejects strides > 1 together with dilations > 1 (in any dims; "
            f"stride {spec.stride}, dilation {spec.dilation}); {direct}")
    return None


def _gradient_tape(tf, spec: ConvSpec, filters, g_last):
    """Pad explicitly (any low/high), convolve 'VALID', keep ``g``'s outputs, backpropagate.

    Dilated stride-1 convolutions go through SpaceToBatchND inside ``tf.nn.convolution``, whose
    gradient has no dilated kernel, so they work on CPU.
    """
    x = tf.zeros(_nhwc_shape(spec.input_shape), dtype=g_last.dtype)
    pads = [[0, 0], *[list(p) for p in spec.padding], [0, 0]]
    with tf.GradientTape() as tape:
        tape.watch(x)
        # data_format must be given: with None, the eager gradient of Conv3D fails reading it
        y = tf.nn.convolution(tf.pad(x, pads), filters, strides=list(spec.stride),
                              padding="VALID", dilations=list(spec.dilation),
                              data_format=_FORMATS[spec.ndim])
        # output_padding >= stride (dilation > stride): x has room for more outputs than g
        y = y[(slice(None),) + tuple(slice(0, m) for m in spec.output_size)]
    return tape.gradient(y, x, output_gradients=g_last)


def _conv_transpose(tf, nd: int, g_last, filters, output_shape, stride, padding):
    transpose = getattr(tf.nn, f"conv{nd}d_transpose")
    return transpose(g_last, filters, output_shape, strides=list(stride), padding=padding,
                     data_format=_FORMATS[nd])


def _depthwise_limits(spec: ConvSpec, dtype: str) -> NotExpressible | None:
    if spec.ndim != 2:
        return NotExpressible(f"TF's depthwise convolution is 2-d only, this spec has {spec.ndim}")
    if spec.weight_shape[1] != 1:
        return NotExpressible(
            f"a depthwise convolution has one input channel per group (groups == C_in); here "
            f"C_in/groups = {spec.in_channels}/{spec.groups} = {spec.weight_shape[1]}")
    if dtype not in _FLOATS:
        return NotExpressible(
            f"DepthwiseConv2dNativeBackpropInput takes half, bfloat16, float, double, not {dtype}")
    if spec.stride[0] != spec.stride[1]:
        return NotExpressible(
            f"DepthwiseConv2dNativeBackpropInput 'only supports equal length strides in the row "
            f"and column dimensions' (tensorflow#33005); stride {spec.stride}")
    if any(d > 1 for d in spec.dilation):
        return NotExpressible(
            f"DepthwiseConv2dNativeBackpropInput on CPU ignores its dilations {spec.dilation}: it "
            f"computes the undilated gradient (cf. tensorflow#56498)")
    return _unreached_rows(spec)


def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
    """dL/dx of ``spec`` for the upstream gradient ``g`` (``spec.output_shape``), every TF way.

    ``w`` is the forward weight ``(C_out, C_in/groups, *k)``; it is cast to ``g``'s dtype. Each
    result is ``spec.input_shape`` in ``g``'s dtype, or a :class:`NotExpressible` with the reason;
    nothing raises for a valid spec.
    """
    names = way_names(spec.ndim)
    if spec.ndim > 3:
        return dict.fromkeys(names, NotExpressible(
            f"TF has 1-d, 2-d and 3-d convolutions only, this spec has {spec.ndim}"))
    dtype = g.dtype.name
    if dtype not in _FLOATS + ("int32",):
        return dict.fromkeys(names, NotExpressible(
            f"TF's convolution kernels take half, bfloat16, float, double (and int32 in "
            f"Conv2D/Conv2DBackpropInput), not {dtype}"))
    tf = import_tf()
    nd = spec.ndim
    result = {}
    with tf.device("/CPU:0"):
        g_last = tf.constant(_channels_last(g))
        w = np.asarray(w).astype(g.dtype, copy=False)
        filters = tf.constant(_tf_filter(w))
        output_shape = _nhwc_shape(spec.input_shape)

        why = _tape_limits(spec, dtype)
        result[names[0]] = why or _channels_first(
            _gradient_tape(tf, spec, filters, g_last).numpy())

        why = _backprop_limits(spec, dtype)
        padding = _tf_padding(spec)
        if why is None and isinstance(padding, list):
            if nd == 2:
                padding = [[0, 0], *padding, [0, 0]]
            else:
                why = NotExpressible(
                    f"conv{nd}d_transpose takes padding 'VALID' or 'SAME' only (explicit lists "
                    f"are 2-d only); padding {spec.padding} is neither")
        result[names[1]] = why or _channels_first(_conv_transpose(
            tf, nd, g_last, filters, output_shape, spec.stride, padding).numpy())

        # the full 'VALID' result, reaching as far as x does, then x's window of it
        full = [max(f, win.stop) for f, win in zip(spec.full_output_size, spec.input_window)]
        why = _backprop_limits(spec, dtype)
        if why is None and any(f - m >= s for f, m, s in
                               zip(full, spec.full_output_size, spec.stride)):
            why = NotExpressible(
                f"x reaches {full}, beyond every output_shape 'VALID' accepts for "
                f"{spec.output_size} outputs ({spec.full_output_size} + up to stride - 1)")
        if why is None:
            out = _conv_transpose(tf, nd, g_last, filters, [spec.batch, *full, spec.in_channels],
                                  spec.stride, "VALID").numpy()
            result[names[2]] = _channels_first(out[(slice(None),) + spec.input_window])
        else:
            result[names[2]] = why

        why = _depthwise_limits(spec, dtype)
        if why is None:
            padding = _tf_padding(spec)
            if isinstance(padding, list):
                padding = [[0, 0], *padding, [0, 0]]
            out = tf.nn.depthwise_conv2d_backprop_input(
                output_shape, tf.constant(_depthwise_filter(w, spec.in_channels)), g_last,
                strides=[1, *spec.stride, 1], padding=padding, data_format="NHWC")
            result[names[3]] = _channels_first(out.numpy())
        else:
            result[names[3]] = why
    return result
