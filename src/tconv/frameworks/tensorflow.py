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
from dataclasses import replace

import numpy as np

from ..convert.code import Code, call_text
from ..convert.layer import (compact, ints, iterable, make, need_dims, no_groups, pair_list,
                             padding_words, shape_arg, show)
from ..convert.layout import Layout, channels_last, identity, inverse, kernel_last, permuted
from ..convert.window import (Dim, Pair, choose, layer_dims, spec_dims, windows, within,
                              worth_trying)
from ..spec import ConvSpec, ConvSpecError, per_dim
from . import (Framework, NotExpressible, first_line, is_file, module_of,
               native_logs_silenced, read_or_reason)


_FLOATS = ("bfloat16", "float16", "float32", "float64")  # bfloat16 through ml_dtypes
#: The data formats, channels-last first, per number of spatial dims.
_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}
#: intra-op threads at most: tconv's arrays are small, and sweeps run several workers at once.
_MAX_THREADS = 4
_configured = False


def import_tf():
    """Import TensorFlow quietly; on first use, keep its thread pools small and let it take a
    GPU's memory only as needed (the ways themselves run on the CPU)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if _configured:
        import tensorflow as tf

        return tf
    with native_logs_silenced():    # 'oneDNN custom operations are on', 'optimized to use ...'
        import tensorflow as tf

        _configure(tf)
    return tf


def _configure(tf) -> None:
    global _configured
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
        tf.constant(0)                              # start the device (it logs) here


# -- what this build's CPU kernels accept ------------------------------------------------------
#
# TensorFlow picks other CPU kernels when its oneDNN ops are on: by default on CPUs with
# AVX-512 (VNNI and newer), or with TF_ENABLE_ONEDNN_OPTS=1; TF_ENABLE_ONEDNN_OPTS=0 turns them
# off. For some dtypes and shapes (float32 and bfloat16, 'VALID'/'SAME') the oneDNN kernels
# accept channels-first data and unequal depthwise strides, which the Eigen kernels refuse.
# tconv leaves the setting to the user: the ways run whatever the build accepts and report its
# refusal as the reason (never a refusal the build would not make), and the verify table names
# the setting (TensorFlow.describe).

def onednn_enabled() -> bool | None:
    """Whether this process's TensorFlow runs its oneDNN kernels (None: it does not say)."""
    import_tf()
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    check = getattr(_pywrap_util_port, "IsMklEnabled", None)
    return None if check is None else bool(check())


def _onednn_words() -> str:
    enabled = onednn_enabled()
    return {True: "oneDNN kernels on", False: "oneDNN kernels off",
            None: "oneDNN setting unknown"}[enabled]


# -- layouts ----------------------------------------------------------------------------------

def channels_last_format(nd: int) -> str:
    """TF's name of the channels-last data format of ``nd`` spatial dims: NWC, NHWC, NDHWC."""
    return _FORMATS[nd][0]


def to_channels_last(a: np.ndarray) -> np.ndarray:
    """``(N, C, *spatial)`` -> ``(N, *spatial, C)``."""
    return np.ascontiguousarray(np.moveaxis(a, 1, -1))


def to_channels_first(a: np.ndarray) -> np.ndarray:
    """``(N, *spatial, C)`` -> ``(N, C, *spatial)``."""
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


def tf_filter(w: np.ndarray) -> np.ndarray:
    """``(C_out, C_in/groups, *k)`` -> ``[*k, C_in/groups, C_out]`` (conv and conv_transpose):
    TF's filter axes (:func:`~tconv.convert.layout.kernel_last`)."""
    return np.ascontiguousarray(np.transpose(w, kernel_last(w.ndim - 2)))


def _depthwise_filter(w: np.ndarray, in_channels: int) -> np.ndarray:
    """``(C_in * mult, 1, kh, kw)`` -> ``[kh, kw, C_in, mult]``: output channel ``c * mult + m``."""
    kh, kw = w.shape[2:]
    return np.ascontiguousarray(w.reshape(in_channels, -1, kh, kw).transpose(2, 3, 0, 1))


def _nhwc_shape(shape: tuple[int, ...]) -> list[int]:
    return [shape[0], *shape[2:], shape[1]]


# -- which TF padding expresses the spec ---------------------------------------------------------

def padding_of(spec: ConvSpec):
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


def unreached_rows(spec: ConvSpec) -> NotExpressible | None:
    """TF's transposed ops accept only an ``output_shape`` whose forward output is ``g``'s size."""
    if spec.output_padding_exceeds_stride:
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
        return _grouped_on_cpu(spec, op)
    return unreached_rows(spec)


def _grouped_on_cpu(spec: ConvSpec, op3d: str) -> NotExpressible:
    """Why a grouped spec has no input gradient on TF's CPU: the 3-d kernel ``op3d`` has no
    groups at all, and the 2-d gradient kernel refuses them."""
    if spec.ndim == 3:
        return NotExpressible(
            f"{op3d} has no grouped convolution (filter channels must equal the input "
            f"channels); groups={spec.groups}")
    return NotExpressible(
        f"the CPU kernel of Conv2DBackpropInput (the gradient of a grouped convolution) rejects "
        f"groups={spec.groups}: 'Gradients for grouped convolutions are not supported on CPU'")


# -- the ways ---------------------------------------------------------------------------------

def _tape_limits(spec: ConvSpec, dtype: str) -> NotExpressible | None:
    if dtype not in _FLOATS:
        return NotExpressible(
            f"tf.GradientTape differentiates floating tensors only (the gradient of a {dtype} "
            f"input is None)")
    strided = any(s > 1 for s in spec.stride)
    dilated = any(d > 1 for d in spec.dilation)
    if spec.groups > 1:
        return _grouped_on_cpu(spec, "the CPU Conv3D kernel")
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
                              data_format=channels_last_format(spec.ndim))
        # output_padding >= stride (dilation > stride): x has room for more outputs than g
        y = y[(slice(None),) + tuple(slice(0, m) for m in spec.output_size)]
    return tape.gradient(y, x, output_gradients=g_last)


def _conv_transpose(tf, nd: int, g_last, filters, output_shape, stride, padding):
    transpose = getattr(tf.nn, f"conv{nd}d_transpose")
    return transpose(g_last, filters, output_shape, strides=list(stride), padding=padding,
                     data_format=channels_last_format(nd))


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
    if any(d > 1 for d in spec.dilation):
        return NotExpressible(
            f"DepthwiseConv2dNativeBackpropInput on CPU ignores its dilations {spec.dilation}: it "
            f"computes the undilated gradient (cf. tensorflow#56498)")
    return unreached_rows(spec)


# -- the layers: tf.nn.conv_transpose and keras.layers.Conv{1,2,3}DTranspose ---------------------

def _tf_layout(nd: int, last: bool = True) -> Layout:
    """Channels-last data (or channels-first), the filter ``[*k, C_out, C_in]``."""
    data = channels_last(nd) if last else identity(nd)
    return Layout(data, data, kernel_last(nd))



def _tf_window(dim: Dim, padding, size: int, i: int, call: str = "tf.nn.conv_transpose") -> Pair:
    """The window of ``tf.nn.conv_transpose`` for output size ``size`` in one dim.

    ``padding`` is ``"VALID"``, ``"SAME"`` or an explicit ``(low, high)`` pair. TF accepts only
    a ``size`` whose forward convolution has the input's size: VALID and explicit
    ``floor((size + P - K) / s) + 1 == o``; SAME ``ceil(size / s) == o``, with the total padding
    ``max((o - 1) * s + K - size, 0)`` split low = floor (the odd cell at the end).
    """
    o, s, k = dim.size, dim.stride, dim.extent
    if padding == "SAME":
        if -(-size // s) != o:
            raise ConvSpecError(
                f"{call}: output size {size} in spatial dim {i} does not fit padding 'SAME': "
                f"ceil({size}/{s}) must be the input size {o}, so {(o - 1) * s + 1}..{o * s}")
        start = ConvSpec.split_padding(max((o - 1) * s + k - size, 0))[0]
        return start, start + size
    low, high = (0, 0) if padding == "VALID" else padding
    room = size + low + high - k
    if room < 0 or room // s + 1 != o:
        least = dim.full - low - high
        raise ConvSpecError(
            f"{call}: output size {size} in spatial dim {i} does not fit padding {padding!r}: "
            f"the forward convolution of that size must have the input size {o}, so "
            f"{max(least, 1)}..{least + s - 1}")
    return low, low + size


def _tf_per_dim(name: str, value, nd: int, layout: Layout) -> tuple[int, ...]:
    """An int, ``nd`` ints, or ``nd + 2`` ints whose batch and channel entries are 1."""
    values = tuple(iterable(value))
    if len(values) == nd + 2:
        full = ints(name, values, nd + 2)
        canon = permuted(full, inverse(layout.data))
        if canon[:2] != (1, 1):
            raise ConvSpecError(f"tf.nn.conv_transpose {name}={list(full)} must be 1 in the batch "
                                f"and channel dims")
        return canon[2:]
    return ints(name, value, nd)


def _padding_arg(padding, nd: int, layout: Layout) -> list:
    """Per dim ``"SAME"``, ``"VALID"`` or an explicit pair."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ConvSpecError(f"tf.nn.conv_transpose padding must be 'SAME', 'VALID' or "
                                f"explicit pairs (TF takes upper case only), got {padding!r}")
        return [padding] * nd
    if nd != 2:
        raise ConvSpecError(f"tf.nn.conv{nd}d_transpose takes padding 'SAME' or 'VALID' only "
                            f"(explicit padding is 2-d only), got {padding!r}")
    pairs = pair_list("padding", padding, nd + 2, allow_negative=False)
    canon = permuted(pairs, inverse(layout.data))
    if canon[:2] != ((0, 0), (0, 0)):
        raise ConvSpecError(f"tf.nn.conv_transpose explicit padding must be [0, 0] in the batch "
                            f"and channel dims, got {padding!r}")
    return list(canon[2:])


def _tf_output_size(output_shape, pads, dims, layout, batch, c_out) -> tuple[int, ...]:
    nd = len(dims)
    if output_shape is None:
        if not all(isinstance(p, str) for p in pads):
            raise ConvSpecError("tf.nn.conv_transpose needs output_shape with explicit padding")
        return tuple(d.size * d.stride + (max(d.extent - d.stride, 0) if p == "VALID" else 0)
                     for d, p in zip(dims, pads))
    shape = shape_arg("output_shape", output_shape)
    if len(shape) == nd:
        return shape
    if len(shape) != nd + 2:
        raise ConvSpecError(f"tf.nn.conv_transpose output_shape must have {nd + 2} entries "
                            f"(or {nd} spatial sizes), got {shape}")
    canon = permuted(shape, inverse(layout.output))
    if canon[:2] != (batch, c_out):
        raise ConvSpecError(
            f"tf.nn.conv_transpose output_shape {shape} must have the batch {batch} and the "
            f"filters' output channels {c_out}")
    return canon[2:]


def _tf_explicit(dim: Dim, want: Pair, i: int):
    """``tf.nn.conv_transpose(input, filters, output_shape, strides, padding, data_format,
    dilations)`` for ``input.shape == input_shape`` and ``filters.shape == filters_shape``.

    ``filters`` is ``[*k, C_out, C_in]``. ``padding`` is ``"SAME"``, ``"VALID"`` or (2-d
    only) the explicit ``[[0, 0], [lo, hi], [lo, hi], [0, 0]]`` (in the data_format's
    order). ``output_shape`` is required by TF; when omitted, tconv takes the size Keras
    would (``in * stride`` for SAME, ``in * stride + max(K - stride, 0)`` for VALID).
    """
    start, stop = within(want, dim.full + dim.stride - 1)
    pair = (start, max(dim.full - stop, 0))
    return (pair, stop - start), _tf_window(dim, pair, stop - start, i)


def _tf_sizes(dim: Dim, mode: str, want: Pair, i: int) -> list:
    """``(output size, window)`` of ``tf.nn.conv_transpose`` with ``mode`` 'VALID' or 'SAME',
    for the sizes TF accepts (:func:`_tf_window`) that can come closest to ``want``."""
    s = dim.stride
    sizes = (range(dim.full, dim.full + s) if mode == "VALID" else
             range((dim.size - 1) * s + 1, dim.size * s + 1))

    def window(n: int) -> Pair:
        return _tf_window(dim, mode, n, i)
    return [(n, window(n)) for n in worth_trying(sizes, window, want, dim.full)]


def _keras_size(dim: Dim, padding: str, output_padding) -> int:
    """Keras' output size (``compute_conv_transpose_output_shape``), which it passes to
    ``tf.nn.conv_transpose`` as output_shape; output_padding None and 0 differ
    (tensorflow#50168)."""
    k, s = dim.extent, dim.stride
    if padding == "valid":
        extra = max(k, s) - k if output_padding is None else output_padding
        return (dim.size - 1) * s + k + extra
    if output_padding is None:
        return dim.size * s
    return (dim.size - 1) * s + k % 2 + output_padding


def _keras_window(dim: Dim, padding: str, output_padding, i: int, call: str) -> Pair:
    return _tf_window(dim, padding.upper(), _keras_size(dim, padding, output_padding), i,
                      f"{call} (through tf.nn.conv_transpose)")


def _keras_candidates(dim: Dim, padding: str, ops, i: int, call: str) -> list:
    """(output_padding, window) for each output_padding Keras (and then TF) accepts."""
    result = []
    for op in ops:
        try:
            result.append((op, _keras_window(dim, padding, op, i, call)))
        except ConvSpecError:       # e.g. 'same', even kernel, output_padding 0: TF refuses it
            pass
    return result


def _keras_ints(dim: Dim, padding: str, want: Pair, i: int, call: str) -> list:
    """:func:`_keras_candidates` for the integer output_paddings (< stride) that can come
    closest to ``want``. With 'same' and an even kernel, output_padding 0 makes the size
    ``(o - 1) * s``, which TF's SAME rule ``ceil(size / s) == o`` (:func:`_tf_window`) refuses:
    the range starts at 1 so that every window the search bisects exists."""
    ops = range(1 if padding == "same" and dim.extent % 2 == 0 else 0, dim.stride)
    tried = worth_trying(ops, lambda op: _keras_window(dim, padding, op, i, call), want, dim.full)
    return _keras_candidates(dim, padding, tried, i, call)


_CPU_DILATION = ("'Current CPU implementations do not yet support dilation rates larger than 1' "
                 "(tensorflow#69103)")


def _cannot_run(layer) -> str | None:
    """Why this machine cannot run a TF or Keras layer: dilation. (Channels-first layers run:
    the oneDNN kernels take some, and where the build refuses, the check reports its error.)"""
    if any(d > 1 for d in layer.spec.dilation):
        return (f"TensorFlow's CPU kernel rejects dilation {show(layer.spec.dilation)} "
                f"({_CPU_DILATION})")
    return None


def keras_lines(layer, crop, bias) -> list[str]:
    """Lines building ``layer``: the Keras layer of ``layer`` (Keras' arguments) with ``weight``
    and ``bias`` set, and its crop as Keras layers (a ``keras.Sequential`` then)."""
    from ..convert.code import crop_axes, crop_widths, has_pads

    after = bias and has_pads(crop)
    nd = layer.spec.ndim
    kwargs = {k: v for k, v in layer.kwargs.items() if k != "use_bias"}
    kwargs.update(use_bias=bool(bias) and not after, dtype=Code("str(weight.dtype)"))
    conv = call_text(layer.call, [], kwargs)
    weights = "[weight, bias]" if bias and not after else "[weight]"
    pads, cuts = crop_widths(layer, crop)
    if pads is None and cuts is None:
        return [f"layer = {conv}", f"layer.build({(None, *layer.input_shape[1:])})",
                f"layer.set_weights({weights})"]
    axes = crop_axes(layer)
    extra = ({"data_format": "channels_first"} if layer.kwargs.get("data_format") ==
             "channels_first" else {})
    extra["dtype"] = Code("conv.dtype")      # Keras casts to each layer's dtype
    steps = []
    for name, widths in (("ZeroPadding", pads), ("Cropping", cuts)):
        if widths is not None:
            per_dim = tuple(tuple(widths[a]) for a in axes)
            steps.append(call_text(f"keras.layers.{name}{nd}D",
                                   [repr(per_dim[0] if nd == 1 else per_dim)], extra))
    if after:
        shape = tuple(-1 if p == 1 else 1 for p in layer.layout.output[1:])
        steps.append(f"keras.layers.Rescaling(1.0, offset=bias.reshape({shape}), "
                     f"dtype=conv.dtype)  # the bias, on the added zeros too")
    return [f"conv = {conv}", "layer = keras.Sequential([",
            f"    keras.Input(shape={tuple(layer.input_shape[1:])}, dtype=conv.dtype),",
            "    conv,",
            *[f"    {step}," for step in steps], "])", f"conv.set_weights({weights})"]


def _keras_layers(model):
    """Every layer of a Keras model, depth first through nested models."""
    for layer in getattr(model, "layers", [model]):
        yield layer
        if hasattr(layer, "layers") and layer is not model:
            yield from _keras_layers(layer)


class _OnTensorFlow(Framework):
    """What TensorFlow and Keras layers share: they run on TensorFlow's CPU kernels."""

    def cannot_run(self, layer) -> str | None:
        return super().cannot_run(layer) or _cannot_run(layer)

    def prepare(self) -> None:
        import_tf()


class TensorFlow(_OnTensorFlow):
    """``keras.layers.Conv{1,2,3}DTranspose(filters, kernel_size, ...)`` on ``input_shape``.

    Keras 3 on the TensorFlow backend (the numbers every backend must give since keras PR
    #22876): the output size comes from ``padding`` and ``output_padding`` (None differs
    from 0, tensorflow#50168), then ``tf.nn.conv_transpose`` keeps TF's window for that
    size. Kernel ``(*k, filters, C_in)``; ``data_format`` ``"channels_last"`` (default) or
    ``"channels_first"``.
    """

    name = "tensorflow"
    aliases = ("tf",)
    title = "TensorFlow"
    packages = ("tensorflow",)
    rank = 20
    flag_call = "tf.nn.conv_transpose"
    flags_taken = ("--layer-output-size",)
    flag_hint = "its size is chosen by --layer-output-size; no groups"
    shape_args = ("input_shape", "filters_shape")
    crop_reason = ("tf.nn.conv_transpose takes only an output_shape whose forward convolution "
                   "gives the input size (output_padding < stride), and explicit padding in 2-d "
                   "only.")
    ways = ("tf.GradientTape(tf.nn.convolution)", "tf.nn.conv{n}d_transpose",
            "tf.nn.conv{n}d_transpose VALID + crop", "tf.nn.depthwise_conv2d_backprop_input")

    def describe(self) -> str:
        return f"{super().describe()} ({_onednn_words()})"

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` for the upstream gradient ``g`` (``spec.output_shape``), every TF way.

        ``w`` is the forward weight ``(C_out, C_in/groups, *k)``; it is cast to ``g``'s dtype.
        Each result is ``spec.input_shape`` in ``g``'s dtype, or a :class:`NotExpressible` with
        the reason; nothing raises for a valid spec.
        """
        names = TensorFlow.way_names(spec.ndim)
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
            g_last = tf.constant(to_channels_last(g))
            w = np.asarray(w).astype(g.dtype, copy=False)
            filters = tf.constant(tf_filter(w))
            output_shape = _nhwc_shape(spec.input_shape)

            why = _tape_limits(spec, dtype)
            result[names[0]] = why or to_channels_first(
                _gradient_tape(tf, spec, filters, g_last).numpy())

            why = _backprop_limits(spec, dtype)
            padding = padding_of(spec)
            if why is None and isinstance(padding, list):
                if nd == 2:
                    padding = [[0, 0], *padding, [0, 0]]
                else:
                    why = NotExpressible(
                        f"conv{nd}d_transpose takes padding 'VALID' or 'SAME' only (explicit lists "
                        f"are 2-d only); padding {spec.padding} is neither")
            result[names[1]] = why or to_channels_first(_conv_transpose(
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
                out = _conv_transpose(tf, nd, g_last, filters,
                                      [spec.batch, *full, spec.in_channels], spec.stride,
                                      "VALID").numpy()
                result[names[2]] = to_channels_first(out[(slice(None),) + spec.input_window])
            else:
                result[names[2]] = why

            why = _depthwise_limits(spec, dtype)
            if why is None:
                padding = padding_of(spec)
                if isinstance(padding, list):
                    padding = [[0, 0], *padding, [0, 0]]
                try:
                    out = tf.nn.depthwise_conv2d_backprop_input(
                        output_shape, tf.constant(_depthwise_filter(w, spec.in_channels)), g_last,
                        strides=[1, *spec.stride, 1], padding=padding, data_format="NHWC")
                except tf.errors.InvalidArgumentError as error:
                    if "equal length strides" not in str(error):
                        raise
                    # the Eigen kernel (and the oneDNN one for some dtypes and paddings) refuses
                    result[names[3]] = NotExpressible(
                        f"DepthwiseConv2dNativeBackpropInput 'only supports equal length "
                        f"strides in the row and column dimensions' (tensorflow#33005) in this "
                        f"TensorFlow's {dtype} kernel ({_onednn_words()}) for stride "
                        f"{spec.stride}")
                else:
                    result[names[3]] = to_channels_first(out.numpy())
            else:
                result[names[3]] = why
        return result

    @staticmethod
    def read(input_shape, filters_shape, output_shape=None, strides=1, padding="SAME",
             data_format=None, dilations=None) :
        """``tf.nn.conv_transpose(input, filters, output_shape, strides, padding, data_format,
        dilations)`` for ``input.shape == input_shape`` and ``filters.shape == filters_shape``.

        ``filters`` is ``[*k, C_out, C_in]``. ``padding`` is ``"SAME"``, ``"VALID"`` or (2-d only)
        the explicit ``[[0, 0], [lo, hi], [lo, hi], [0, 0]]`` (in the data_format's order).
        ``output_shape`` is required by TF; when omitted, tconv takes the size Keras would
        (``in * stride`` for SAME, ``in * stride + max(K - stride, 0)`` for VALID).
        """
        filters_shape = shape_arg("filters_shape", filters_shape)
        nd = len(filters_shape) - 2
        need_dims("tf.nn.conv_transpose", nd)
        input_shape = shape_arg("input_shape", input_shape, nd + 2)
        formats = _FORMATS[nd]
        if data_format is not None and data_format not in formats:
            raise ConvSpecError(
                f"tf.nn.conv_transpose data_format must be one of {formats} for {nd} spatial dims, "
                f"got {data_format!r}")
        last = data_format is None or data_format == formats[0]
        layout = _tf_layout(nd, last)
        batch, c_in = input_shape[0], input_shape[-1 if last else 1]
        size = permuted(input_shape, inverse(layout.data))[2:]
        *kernel, c_out, c_in_f = filters_shape
        if c_in_f != c_in:
            raise ConvSpecError(
                f"tf.nn.conv_transpose: filters_shape[-1]={c_in_f} (in_channels of [*k, out, in]) "
                f"must equal the input channels {c_in}")
        stride = _tf_per_dim("strides", strides, nd, layout)
        dilation = _tf_per_dim("dilations", 1 if dilations is None else dilations, nd, layout)
        pads = _padding_arg(padding, nd, layout)
        dims = layer_dims(size, kernel, stride, dilation)
        sizes = _tf_output_size(output_shape, pads, dims, layout, batch, c_out)
        if output_shape is None:        # state the size tconv took
            output_shape = list(permuted((batch, c_out, *sizes), layout.output))
        args = dict(input_shape=input_shape, filters_shape=filters_shape, output_shape=output_shape,
                    strides=strides, padding=padding, data_format=data_format, dilations=dilations)
        wins = [_tf_window(dim, p, n, i) for i, (dim, p, n) in enumerate(zip(dims, pads, sizes))]
        return make("tensorflow", "tf.nn.conv_transpose", args, batch=batch, c_in=c_in, c_out=c_out,
                    kernel=kernel, stride=stride, dilation=dilation, groups=1, size=size,
                    wins=wins, layout=layout)

    @staticmethod
    def write(spec: ConvSpec, options: dict) -> dict:
        """'VALID' or 'SAME' with an output_shape if exact, else explicit pairs (2-d), else the
        closest with a crop. TF's output_shape is always one whose forward convolution fits."""
        call = "tf.nn.conv_transpose"
        need_dims(call, spec.ndim)
        no_groups(call, spec)
        dims, wants = spec_dims(spec), windows(spec)
        modes = {mode: [_tf_sizes(d, mode, want, i) for i, (d, want) in
                        enumerate(zip(dims, wants))] for mode in ("VALID", "SAME")}
        if spec.ndim == 2:
            modes["EXPLICIT"] = [[_tf_explicit(d, want, i)] for i, (d, want) in
                                 enumerate(zip(dims, wants))]
        mode, picks = choose(wants, [d.full for d in dims], modes)
        layout = _tf_layout(spec.ndim)
        if mode == "EXPLICIT":
            sizes = [n for _, n in picks]
            padding = [[0, 0], *[list(pair) for pair, _ in picks], [0, 0]]
        else:
            sizes, padding = picks, mode
        # the layer's input is y (spec.out_channels channels), its output x (spec.in_channels)
        return dict(input_shape=permuted(spec.output_shape, layout.data),
                    filters_shape=(*spec.kernel_size, spec.in_channels, spec.out_channels),
                    output_shape=[spec.batch, *sizes, spec.in_channels], strides=list(spec.stride),
                    padding=padding, data_format=channels_last_format(spec.ndim),
                    dilations=list(spec.dilation))

    @staticmethod
    def from_flags(size, k, in_channels, out_channels, stride, padding, output_shape, dilation,
                   batch, **_):
        mode, explicit = padding_words("same" if padding is None else padding)
        if mode is not None:
            tf_padding = mode.upper()
        else:
            pairs = pair_list("--padding", explicit, len(size), allow_negative=False)
            tf_padding = [[0, 0], *[list(p) for p in pairs], [0, 0]]
        shape = None if output_shape is None else [
            batch, *per_dim("--layer-output-size", output_shape, len(size)), out_channels]
        return TensorFlow.read((batch, *size, in_channels), (*k, out_channels, in_channels), shape,
                               stride, tf_padding, None, dilation)

    def code(self, layer, crop, bias, runnable: bool = False):
        """A function ``layer(x)``: ``tf.nn.conv_transpose`` (the batch of ``output_shape`` is
        ``x``'s), the crop, then the bias; in ``x``'s dtype."""
        from ..convert.code import crop_lines

        kwargs = {k: v for k, v in layer.kwargs.items() if v is not None}
        shape = list(layer.spec.input_shape)            # the transposed convolution's own size
        shape = permuted(shape, layer.layout.output)
        if kwargs.get("output_shape") is not None and len(kwargs["output_shape"]) == len(shape):
            shape = list(kwargs["output_shape"])
        batch = layer.layout.output.index(0)
        kwargs["output_shape"] = Code("[" + ", ".join(
            "x.shape[0]" if i == batch else str(v) for i, v in enumerate(shape)) + "]")
        call = call_text("tf.nn.conv_transpose", ["x", "tf.cast(filters, x.dtype)"], kwargs,
                         "    ")
        setup = ["filters = tf.constant(weight)", "", "", "def layer(x):",
                 f'    """{layer.call}' + (", the crop" if any(map(any, crop)) else "")
                 + (" and the bias" if bias else "") + '."""',
                 "    x = tf.convert_to_tensor(x)", f"    y = {call}",
                 *[f"    {line}" for line in crop_lines(layer, crop, "bias" if bias else None)],
                 "    return y"]
        return ["import tensorflow as tf"], setup, ["return layer(x).numpy()"]

    def bias_code(self, bias: str, shape) -> str:
        return f"y = y + tf.reshape(tf.cast({bias}, y.dtype), {shape})"

    def unbatched(self, layer) -> dict:
        """output_shape's batch is the input's (the code passes ``x.shape[0]``)."""
        kwargs = dict(layer.kwargs)
        shape = kwargs.get("output_shape")
        if shape is not None and len(shape) == layer.spec.ndim + 2:
            shape = list(shape)
            shape[layer.layout.output.index(0)] = None
            kwargs["output_shape"] = shape
        return kwargs

    def reads_object(self, obj) -> bool:
        return module_of(obj) == "tensorflow"

    def read_layer(self, obj, input_shape=None, output_shape=None, strides=1, padding="SAME",
                   data_format=None, dilations=None, bias=None, **_):
        """``tf.nn.conv_transpose(x, obj, output_shape, strides, padding, data_format,
        dilations)`` (then ``bias`` added, if given) for ``x`` of ``input_shape``: ``obj`` is
        the filter ``[*k, C_out, C_in]`` (a tensor, variable or array)."""
        from ..convert.objects import LayerRead

        filters = np.asarray(obj)
        if input_shape is None:
            raise ConvSpecError("tf.nn.conv_transpose: give input_shape (its input's shape, in "
                                "data_format's order)", "input_shape")
        layer = TensorFlow.read(input_shape, filters.shape, output_shape, strides, padding,
                                data_format, dilations)
        b = None if bias is None else np.asarray(bias)
        if b is not None and b.shape != (layer.spec.in_channels,):
            raise ConvSpecError(f"bias must have shape (C_out,) = ({layer.spec.in_channels},), got "
                                f"{b.shape}", "bias")
        args = dict(layer.args)
        sizes = list(layer.output_shape)

        def run(x):
            tf = import_tf()
            shape = list(sizes)
            shape[layer.layout.output.index(0)] = x.shape[0]
            y = tf.nn.conv_transpose(x, filters, shape, strides=args["strides"],
                                     padding=args["padding"], data_format=data_format,
                                     dilations=dilations)
            if b is not None:
                last = layer.layout.output[-1] == 1
                y = tf.nn.bias_add(y, b, data_format="N...C" if last else "NC...")
            return y.numpy()

        return LayerRead(replace(layer, bias=b is not None), filters, b, run)

    def pad_code(self, widths) -> str:
        return f"y = tf.pad(y, {[list(w) for w in widths]})"


class Keras(_OnTensorFlow):
    """Keras 3: the ``keras.layers.Conv{1,2,3}DTranspose`` layer, on the TensorFlow backend."""

    name = "keras"
    title = "Keras"
    packages = ("keras",)
    rank = 25
    flag_call = "keras.layers.ConvNDTranspose"
    flags_taken = ("--layer-output-padding",)
    flag_hint = "its size is chosen by --padding and --layer-output-padding; no groups"
    shape_args = ("input_shape",)
    crop_reason = "Keras has padding 'same'/'valid' and output_padding < stride only."

    @staticmethod
    def read(input_shape, filters, kernel_size, strides=1, padding="valid",
             output_padding=None, data_format=None, dilation_rate=1, use_bias=True) :
        """``keras.layers.Conv{1,2,3}DTranspose(filters, kernel_size, ...)`` on ``input_shape``.

        Keras 3 on the TensorFlow backend (the numbers every backend must give since keras PR
        #22876): the output size comes from ``padding`` and ``output_padding`` (None differs from 0,
        tensorflow#50168), then ``tf.nn.conv_transpose`` keeps TF's window for that size. Kernel
        ``(*k, filters, C_in)``; ``data_format`` ``"channels_last"`` (default) or
        ``"channels_first"``.
        """
        input_shape = shape_arg("input_shape", input_shape)
        nd = len(input_shape) - 2
        call = f"keras.layers.Conv{nd}DTranspose"
        need_dims("keras.layers.ConvNDTranspose", nd)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ConvSpecError(f"{call} data_format must be 'channels_last' or 'channels_first', "
                                f"got {data_format!r}")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ConvSpecError(f"{call} padding must be 'valid' or 'same', got {padding!r}")
        mode = padding.lower()
        layout = _tf_layout(nd, data_format != "channels_first")
        kernel = ints("kernel_size", kernel_size, nd)
        stride, dilation = ints("strides", strides, nd), ints("dilation_rate", dilation_rate, nd)
        if max(stride) > 1 and max(dilation) > 1:
            raise ConvSpecError(f"{call} refuses strides > 1 together with dilation_rate > 1, got "
                                f"strides={show(stride)}, dilation_rate={show(dilation)}")
        ops = ([None] * nd if output_padding is None
               else ints("output_padding", output_padding, nd, 0))
        for i, (op, s) in enumerate(zip(ops, stride)):
            if op is not None and op >= s:
                raise ConvSpecError(f"{call}: output_padding={show(ops)} must be smaller than "
                                    f"strides={show(stride)} (spatial dim {i})")
        canon = permuted(input_shape, inverse(layout.data))
        dims = layer_dims(canon[2:], kernel, stride, dilation)
        args = dict(input_shape=input_shape, filters=filters, kernel_size=kernel_size,
                    strides=strides, padding=padding, output_padding=output_padding,
                    data_format=data_format, dilation_rate=dilation_rate, use_bias=use_bias)
        wins = [_keras_window(dim, mode, op, i, call) for i, (dim, op) in enumerate(zip(dims, ops))]
        return make("keras", call, args, batch=canon[0], c_in=canon[1], c_out=filters,
                    kernel=kernel, stride=stride, dilation=dilation, groups=1, size=canon[2:],
                    wins=wins, layout=layout, bias=use_bias)

    @staticmethod
    def write(spec: ConvSpec, options: dict) -> dict:
        """'same'/'valid' with output_padding None if exact (the usual spelling), else with
        output_padding per dim; the closest with a crop otherwise."""
        call = f"keras.layers.Conv{spec.ndim}DTranspose"
        need_dims("keras.layers.ConvNDTranspose", spec.ndim)
        no_groups(call, spec)
        if max(spec.stride) > 1 and max(spec.dilation) > 1:
            raise ConvSpecError(
                f"{call} refuses strides > 1 together with dilation_rate > 1 (stride "
                f"{show(spec.stride)}, dilation {show(spec.dilation)}): no Keras layer expresses "
                f"it")
        dims, wants = spec_dims(spec), windows(spec)
        modes = {}
        for padding in ("valid", "same"):
            modes[padding, None] = [_keras_candidates(d, padding, [None], i, call)
                                    for i, d in enumerate(dims)]
        for padding in ("valid", "same"):
            modes[padding, "ints"] = [_keras_ints(d, padding, want, i, call)
                                      for i, (d, want) in enumerate(zip(dims, wants))]
        (padding, kind), picks = choose(wants, [d.full for d in dims], modes)
        layout = _tf_layout(spec.ndim)
        return dict(input_shape=permuted(spec.output_shape, layout.data), filters=spec.in_channels,
                    kernel_size=compact(spec.kernel_size), strides=compact(spec.stride),
                    padding=padding, output_padding=None if kind is None else compact(picks),
                    data_format="channels_last", dilation_rate=compact(spec.dilation),
                    use_bias=options.get("bias", False))

    @staticmethod
    def from_flags(size, k, in_channels, out_channels, stride, padding, output_padding, dilation,
                   batch, bias=False, **_):
        mode, _explicit = padding_words("valid" if padding is None else padding)
        if mode is None:
            raise ConvSpecError(f"keras.layers.ConvNDTranspose takes --padding same or valid, got "
                                f"{padding!r}")
        return Keras.read((batch, *size, in_channels), out_channels, compact(k), stride, mode,
                          output_padding, None, dilation, bias)

    def reads_object(self, obj) -> bool:
        return module_of(obj) == "keras"

    def reads_model(self, model) -> bool:
        return is_file(model, ".keras") or module_of(model) == "keras"

    def find_layers(self, model, input_shape=None) -> list:
        """The ``Conv{1,2,3}DTranspose`` layers of a Keras model (or ``.keras`` file), nested
        models included, each with the input shape of the model's graph (batch 1)."""
        import keras

        if is_file(model, ".keras"):
            import_tf()
            try:
                model = keras.saving.load_model(str(model), compile=False)
            except Exception as error:
                raise ConvSpecError(f"keras.saving.load_model({str(model)!r}) failed: "
                                    f"{first_line(error)}",
                                    "model") from None
        kinds = tuple(getattr(keras.layers, f"Conv{n}DTranspose") for n in (1, 2, 3))
        found = []
        for layer in _keras_layers(model):
            if isinstance(layer, kinds):
                try:
                    shape = tuple(layer.input.shape)
                except (AttributeError, ValueError):        # not in a graph: its build shape
                    shape = None
                shape = None if shape is None or None in shape[1:] else (1, *shape[1:])
                found.append((layer.name, read_or_reason(self.read_layer, layer,
                                                         input_shape=shape)))
        return found

    def read_layer(self, obj, input_shape=None, **_):
        """A built ``keras.layers.Conv{1,2,3}DTranspose``: its config, kernel
        ``(*k, filters, C_in)`` and bias, on ``input_shape`` (default: the shape it was built
        for, if that has its sizes). An activation is not part of the conversion: it is named
        in the notes, and the check runs the layer without it."""
        import keras

        from ..convert.objects import LayerRead, input_shape_arg

        kinds = tuple(getattr(keras.layers, f"Conv{n}DTranspose") for n in (1, 2, 3))
        if not isinstance(obj, kinds):
            raise ConvSpecError(f"tconv reads keras.layers.Conv1DTranspose/2D/3D, not "
                                f"{type(obj).__name__}", "obj")
        if not obj.built:
            raise ConvSpecError(f"{type(obj).__name__} {obj.name!r} is not built: call it or "
                                f"build it first (its kernel does not exist yet)", "obj")
        config = obj.get_config()
        nd = len(config["kernel_size"])
        layout = _tf_layout(nd, config["data_format"] != "channels_first")
        if input_shape is None:
            built = (getattr(obj, "_build_shapes_dict", None) or {}).get("input_shape")
            if built is not None and None not in tuple(built)[1:]:
                input_shape = (1, *tuple(built)[1:])
        kernel = obj.kernel.numpy()
        call = f"keras.layers.Conv{nd}DTranspose"
        shape = input_shape_arg(call, input_shape, kernel.shape[-1], nd, layout)
        layer = Keras.read(shape, config["filters"], config["kernel_size"], config["strides"],
                           config["padding"], config["output_padding"], config["data_format"],
                           config["dilation_rate"], config["use_bias"])
        notes, linear = (), obj
        if config.get("activation", "linear") != "linear":
            notes = (f"{obj.name}: activation {config['activation']!r} is not converted: apply "
                     f"it after the converted layer",)
            linear = type(obj).from_config({**config, "activation": "linear"})
            linear.build((None, *shape[1:]))
            linear.set_weights(obj.get_weights())
        bias = obj.bias.numpy() if config["use_bias"] else None
        return LayerRead(layer, kernel, bias, lambda x: np.asarray(linear(x)), notes)

    def code(self, layer, crop, bias, runnable: bool = False):
        """The built layer with its weights set; with a crop, a ``keras.Sequential`` of it and
        the ``ZeroPaddingND`` / ``CroppingND`` layers (and the bias after added zero cells, as
        a ``Rescaling`` offset)."""
        return ["import keras"], keras_lines(layer, crop, bias), ["return np.asarray(layer(x))"]

    def pad_code(self, widths) -> str:
        return f"y = keras.ops.pad(y, {[list(w) for w in widths]})"
