"""ONNX: the ``ConvTranspose`` operator, run by onnxruntime and by ``onnx.reference``.

ONNX ``ConvTranspose(X, W)`` is the transposed convolution itself, so a spec's input gradient is
one node: ``X`` is the upstream gradient ``g`` (``spec.output_shape``) and ``W`` is the forward
weight unchanged, ``(C, M/group, *k)`` in ONNX's names with ``C`` = tconv's ``C_out`` and
``M`` = ``C_in``. Per spatial dim, with ``K = dilation * (k - 1) + 1`` and ``o`` the size of
``X``, ONNX computes the uncropped result of size ``(o - 1) * stride + K``, extends it by
``output_padding`` zeros at the end and crops ``pads_begin`` cells at the start and
``pads_end`` at the end::

    size = stride * (o - 1) + output_padding + K - pads_begin - pads_end

A tconv spec with padding ``(lo, hi)`` and output_padding ``op`` keeps the same cells iff
``pads_begin == lo`` and ``pads_end - output_padding == hi - op``; the three ways differ in how
they choose ``pads``:

``pads``
    explicit ``pads = [lo..., hi...]`` and ``output_padding = op``. Both runtimes require
    ``output_padding < stride`` (tconv, like PyTorch, allows ``< max(stride, dilation)``); a
    larger ``op`` is moved into ``pads_end`` where ``hi`` can absorb it.
``output_shape``
    ``output_shape = input_size`` with ``auto_pad`` NOTSET; the runtime derives
    ``total = stride * (o - 1) + output_padding + K - output_shape`` and, by the operator's
    text, puts ``total - total // 2`` (the larger half) at the start. ``output_padding`` only
    moves that split; 0 is used where it can be.
``auto_pad``
    ``SAME_UPPER`` / ``SAME_LOWER`` make the size ``o * stride`` with
    ``total = K - stride + output_padding``, the odd cell at the end (UPPER) or start (LOWER);
    ``VALID`` means no pads. ``output_padding`` again only moves the split (onnx#4299).

Known differences of the installed implementations (see ``docs/frameworks.md`` and
``tests/test_backend_onnx.py``) are reported as :class:`KnownDifference` in their region only:
``onnx.reference`` mis-assembles channels for ``group > 1`` unless ``C/group == M/group == 1``
(onnx PR #8446) and ignores ``output_shape`` when it derives pads with auto_pad NOTSET (the
pads stay 0, onnx#4527). When an implementation raises inside such a region, the way is
:class:`NotExpressible` with the error, since it gives no result.
"""

from __future__ import annotations

import functools
from typing import Iterable

import numpy as np

from ..convert.code import call_text
from ..convert.layer import ints, int_list, iterable, make, padding_words, pair_list, shape_arg
from ..convert.layout import Layout
from ..convert.window import Dim, Pair, layer_dims, spec_dims, spec_keeping, windows, within
from ..spec import ConvSpec, ConvSpecError, per_dim
from . import (Framework, KnownDifference, NotExpressible, first_line, is_file, module_of,
               read_or_reason)

#: Opset 21 / IR 10 (onnx 1.16, onnxruntime 1.18: the oldest versions the extra allows). Its
#: ConvTranspose-11 has the same attributes and meaning as ConvTranspose-22, which adds bfloat16.
OPSET = 21
IR_VERSION = 10

#: The float types of ONNX ConvTranspose that NumPy has (bfloat16 is not a NumPy dtype).
_ONNX_DTYPES = ("float16", "float32", "float64")
#: onnxruntime's CPU provider registers ConvTranspose for these only (tested: float64 has no
#: kernel; float16 is computed in float32 and rounded once).
_ORT_DTYPES = ("float16", "float32")

_ORT, _REF = "onnxruntime", "onnx.reference"
_FORMS = ("pads", "output_shape", "auto_pad")
_NAMES = {(_ORT, "pads"): "onnxruntime ConvTranspose pads",
          (_REF, "pads"): "onnx.reference ConvTranspose pads",
          (_ORT, "output_shape"): "onnxruntime output_shape",
          (_REF, "output_shape"): "onnx.reference output_shape",
          (_ORT, "auto_pad"): "onnxruntime auto_pad",
          (_REF, "auto_pad"): "onnx.reference auto_pad"}

_GROUP_BUG = ("onnx.reference ConvTranspose with group > 1 slices W by M/group rows instead of "
              "C/group and writes each group's M/group output channels into one channel slot, "
              "so only C/group == M/group == 1 works (the write-back is fixed by onnx PR #8446)")
_OUTPUT_SHAPE_BUG = ("onnx.reference ignores output_shape when deriving pads with auto_pad "
                     "NOTSET: pads stay 0 instead of total - total//2 at the start (onnx#4527)")


def _ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# -- choosing the attributes: one helper per form, each (attrs, None) or (None, reason) ---------

def _base_attrs(spec: ConvSpec) -> dict:
    return dict(kernel_shape=list(spec.kernel_size), strides=list(spec.stride),
                dilations=list(spec.dilation), group=spec.groups)


def pads_form(spec: ConvSpec):
    """``pads = [lo..., hi...]``, ``output_padding = op``; an op >= stride moves into pads_end."""
    ends, ops = [], []
    for i, ((lo, hi), op, s, d) in enumerate(zip(spec.padding, spec.output_padding,
                                                 spec.stride, spec.dilation)):
        if op < s:
            ends.append(hi)
            ops.append(op)
            continue
        extra = op - (s - 1)   # the part of op that output_padding < stride cannot carry
        if hi < extra:
            return None, (
                f"output_padding {op} >= stride {s} in spatial dim {i} (allowed by dilation "
                f"{d}): onnxruntime and onnx.reference require output_padding < stride, and the "
                f"end padding {hi} cannot absorb the {extra} extra cells")
        ends.append(hi - extra)
        ops.append(s - 1)
    attrs = _base_attrs(spec)
    attrs.update(pads=[lo for lo, _ in spec.padding] + ends, output_padding=ops)
    return attrs, None


def output_padding_giving(low: int, base: int, stride: int, odd_low: bool, prefer: int):
    """The output_padding (< stride) whose total padding ``base + output_padding`` puts ``low``
    cells at the start, the most natural first (0, then ``prefer``, then the smallest), or
    None."""
    fits = ConvSpec.output_paddings_splitting_to(low, base, stride, odd_low)
    return min(fits, key=lambda c: (c != 0, c != prefer, c), default=None)


def _show_lows(lows: range) -> str:
    """The start paddings a form reaches: ``none``, ``2``, ``2, 3`` or ``2..9``."""
    if len(lows) > 2:
        return f"{lows[0]}..{lows[-1]}"
    return ", ".join(map(str, lows)) if lows else "none"


def _output_shape_form(spec: ConvSpec):
    """``output_shape = input_size``, auto_pad NOTSET: the larger half of the derived total
    padding goes to the start; ``output_padding`` (< stride) chooses the total."""
    ops = []
    for i, (o, n, (lo, hi), op, s, e) in enumerate(zip(
            spec.output_size, spec.input_size, spec.padding, spec.output_padding, spec.stride,
            spec.extents)):
        full = (o - 1) * s + e
        # total = full + output_padding - n (= lo + hi - op + output_padding)
        cand = output_padding_giving(lo, full - n, s, True, op)
        if cand is None:
            return None, (
                f"output_shape with auto_pad NOTSET pads total - total//2 at the start, with "
                f"total = {full} + output_padding - {n} for output_padding 0..{s - 1}: start "
                f"padding {_show_lows(ConvSpec.split_lows(full - n, s, True))} in spatial dim "
                f"{i}, but the spec has {lo}")
        ops.append(cand)
    attrs = _base_attrs(spec)
    attrs.update(output_shape=list(spec.input_size), output_padding=ops)
    return attrs, None


def _auto_pad_form(spec: ConvSpec):
    """SAME_UPPER, SAME_LOWER or VALID, whichever gives the spec's padding in every dim."""
    found, reasons = auto_pad_forms(spec)
    return (found[0], None) if found else (None, "; ".join(reasons))


def auto_pad_forms(spec: ConvSpec) -> tuple[list[dict], list[str]]:
    """The attributes of every ``auto_pad`` mode that gives the spec's padding (SAME_UPPER,
    SAME_LOWER, VALID, in that order), and why each other mode does not."""
    found, reasons = [], []
    dims = list(enumerate(zip(spec.output_size, spec.input_size, spec.padding,
                              spec.output_padding, spec.stride, spec.extents)))
    wrong_size = [(i, o, n, s) for i, (o, n, _, _, s, _) in dims if n != o * s]
    if wrong_size:
        i, o, n, s = wrong_size[0]
        reasons.append(f"SAME_UPPER and SAME_LOWER make the output input * stride = {o}*{s} = "
                       f"{o * s} in spatial dim {i}, the spec's is {n}")
    else:
        for mode in ("SAME_UPPER", "SAME_LOWER"):
            at_start = mode == "SAME_LOWER"
            ops = []
            for i, (o, n, (lo, hi), op, s, e) in dims:
                cand = output_padding_giving(lo, e - s, s, at_start, op)
                if cand is None:
                    reasons.append(
                        f"{mode} pads total = {e} - {s} + output_padding (0..{s - 1}), giving "
                        f"start padding {_show_lows(ConvSpec.split_lows(e - s, s, at_start))} "
                        f"in spatial dim {i}, the spec has {lo}")
                    break
                ops.append(cand)
            else:
                found.append(dict(_base_attrs(spec), auto_pad=mode, output_padding=ops))
    # VALID: no pads, size = full + output_padding; so lo == 0 and output_padding = op - hi.
    ops = []
    for i, (_, _, (lo, hi), op, s, _) in dims:
        if lo != 0 or not 0 <= op - hi < s:
            reasons.append(f"VALID crops nothing, the spec crops {lo} at the start and "
                           f"{hi - op} at the end in spatial dim {i}")
            break
        ops.append(op - hi)
    else:
        found.append(dict(_base_attrs(spec), auto_pad="VALID", output_padding=ops))
    return found, reasons


_FORM_BUILDERS = {"pads": pads_form, "output_shape": _output_shape_form,
                  "auto_pad": _auto_pad_form}
#: The three ways of saying a spec's padding to ConvTranspose, in the order of the ways.
FORMS = _FORMS


def form_attributes(spec: ConvSpec, form: str):
    """The ConvTranspose attributes of ``spec`` in ``form`` (one of :data:`FORMS`), as
    ``(attrs, None)``, or ``(None, reason)`` when that form cannot say the spec's padding."""
    return _FORM_BUILDERS[form](spec)


def expressible(spec: ConvSpec, forms, names, result: dict, attributes=None):
    """``(form, name, attrs)`` for each of ``forms`` that can say ``spec`` (by ``attributes(spec,
    form)``, :func:`form_attributes` unless given); each other form's way ``name`` goes into
    ``result`` as :class:`NotExpressible` with the reason."""
    for form, name in zip(forms, names):
        attrs, why = (attributes or form_attributes)(spec, form)
        if why:
            result[name] = NotExpressible(why)
        else:
            yield form, name, attrs


# -- running a model ----------------------------------------------------------------------------

def _model_bytes(attrs: dict, x_shape, w_shape, dtype: np.dtype, with_bias: bool = False
                 ) -> bytes:
    from onnx import helper

    elem = helper.np_dtype_to_tensor_dtype(dtype)
    inputs = ["X", "W", "B"] if with_bias else ["X", "W"]
    node = helper.make_node("ConvTranspose", inputs, ["Y"], **attrs)
    values = [helper.make_tensor_value_info("X", elem, list(x_shape)),
              helper.make_tensor_value_info("W", elem, list(w_shape))]
    if with_bias:
        values.append(helper.make_tensor_value_info("B", elem, [w_shape[1] * attrs.get("group",
                                                                                      1)]))
    graph = helper.make_graph([node], "tconv_input_grad", values,
                              [helper.make_tensor_value_info("Y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="tconv")
    return model.SerializeToString()


def model_with_weight(attrs: dict, x_shape, w: np.ndarray, opset: int = OPSET):
    """A one-node ConvTranspose ``ModelProto`` with the weight as an initializer (a constant,
    as in an exported model) and one input ``X``; shapes inferred, as converters expect."""
    import onnx
    from onnx import helper, numpy_helper

    elem = helper.np_dtype_to_tensor_dtype(w.dtype)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node], "tconv_conv_transpose", [helper.make_tensor_value_info("X", elem, list(x_shape))],
        [helper.make_tensor_value_info("Y", elem, None)],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(w), "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=IR_VERSION, producer_name="tconv")
    return onnx.shape_inference.infer_shapes(model)


@functools.lru_cache(maxsize=64)
def _ort_session(model: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3          # errors only
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=64)
def _reference_evaluator(model: bytes):
    import onnx
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(onnx.load_from_string(model))


def _run(runtime: str, model: bytes, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    feeds = {"X": g, "W": w}
    if runtime == _ORT:
        (y,) = _ort_session(model).run(None, feeds)
    else:
        (y,) = _reference_evaluator(model).run(None, feeds)
    return np.asarray(y)


def graph_shapes(model, input_shape=None) -> dict:
    """The static shapes of a model's values, by name (from ONNX's shape inference; a
    dimension without a fixed size, such as the batch, is 1). ``input_shape`` replaces the
    first graph input's shape."""
    import onnx

    if input_shape is not None:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        dims = model.graph.input[0].type.tensor_type.shape.dim
        if len(dims) != len(input_shape):
            raise ConvSpecError(f"the model's input {model.graph.input[0].name!r} has {len(dims)} "
                                f"dims, input_shape has {len(input_shape)}", "input_shape")
        for dim, size in zip(dims, input_shape):
            dim.Clear()
            dim.dim_value = int(size)
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            shapes[value.name] = tuple(d.dim_value if d.dim_value > 0 else 1 for d in dims)
    return shapes


def _known_bug(runtime: str, form: str, spec: ConvSpec) -> str | None:
    """The documented bug whose region this run is in, or None."""
    if runtime != _REF:
        return None
    if spec.groups > 1 and (spec.out_channels // spec.groups > 1
                            or spec.in_channels // spec.groups > 1):
        return _GROUP_BUG
    if form == "output_shape" and any(lo > 0 for lo, _ in spec.padding):
        return _OUTPUT_SHAPE_BUG
    return None


# -- the layer: a ConvTranspose node ------------------------------------------------------------

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _onnx_window(dim: Dim, op: int, auto_pad: str, pads: Pair, size, i: int) -> Pair:
    """The ONNX ConvTranspose window in one dim (the operator text; onnxruntime follows it).

    ``output_shape`` given: ``total = F + output_padding - size``, the larger half at the start
    unless SAME_UPPER (onnx#4527 is onnx.reference ignoring this). SAME_UPPER / SAME_LOWER
    without it: size ``o * stride``, total ``K - stride + output_padding``, the odd cell at the end
    (UPPER) or start (LOWER): output_padding moves the pads, not the size (onnx#4299). VALID: no
    pads. NOTSET: ``pads``.
    """

    if size is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        size = dim.size * dim.stride if size is None else size
        total = dim.full + op - size
        if total < 0:
            # larger than the full result: both runtimes return it with zeros at the end (ONNX's
            # node test test_convtranspose_output_shape), for sizes whose forward convolution
            # still has the input's size
            if size - dim.full >= dim.stride:
                raise ConvSpecError(
                    f"ONNX ConvTranspose: output size {size} in spatial dim {i} is "
                    f"{size - dim.full} cells past the {dim.full}-cell full result; onnxruntime "
                    f"takes at most "
                    f"stride - 1 = {dim.stride - 1} ('Explicit output_shape is inconsistent with "
                    f"input spatial dimensions')")
            return 0, size
        start = ConvSpec.split_padding(total, odd_low=auto_pad != "SAME_UPPER")[0]
        return start, start + size
    if auto_pad == "VALID":
        return 0, dim.full + op
    return pads[0], dim.full + op - pads[1]


def _onnx_pads(pads, nd: int) -> list[Pair]:
    """``[begin..., end...]`` as one (begin, end) pair per dim."""
    if pads is None:
        return [(0, 0)] * nd
    if not isinstance(pads, Iterable) or isinstance(pads, str):
        raise ConvSpecError(f"ONNX ConvTranspose pads must be {2 * nd} ints [begin..., end...], "
                            f"got {pads!r}")
    values = ints("pads", pads, 2 * nd, 0)
    return list(zip(values[:nd], values[nd:]))


class Onnx(Framework):
    """ONNX: the ConvTranspose node in onnxruntime and onnx.reference (three forms of padding
    each), and the node as a layer."""

    name = "onnx"
    title = "ONNX"
    packages = ("onnx",)
    rank = 40
    flag_call = "ONNX ConvTranspose"
    flags_taken = ("--layer-output-padding", "--layer-output-size", "--auto-pad", "--groups")
    shape_args = ("x_shape", "w_shape", "b_shape")
    crop_reason = "onnxruntime and onnx.reference require output_padding < stride."

    ways = tuple(_NAMES[runtime, form] for form in _FORMS for runtime in (_ORT, _REF))

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` by ONNX ConvTranspose, each form in each runtime; see the module doc.

        ``g`` is ``spec.output_shape`` (ConvTranspose's X), ``w`` the forward weight (its W); each
        result is ``spec.input_shape`` in ``g``'s dtype.
        """
        dtype = np.dtype(g.dtype)
        result = {}
        if dtype.name not in _ONNX_DTYPES:
            return dict.fromkeys(Onnx.way_names(spec.ndim), NotExpressible(
                f"ONNX ConvTranspose takes bfloat16, float16, float32 and float64 tensors, "
                f"not {dtype.name}"))
        g = np.ascontiguousarray(g)
        w = np.ascontiguousarray(w, dtype=dtype)
        ort_why = None
        if not _ort_available():
            ort_why = "onnxruntime is not installed"
        elif dtype.name not in _ORT_DTYPES:
            ort_why = (f"onnxruntime's CPU ConvTranspose has {' and '.join(_ORT_DTYPES)} kernels "
                       f"only, not {dtype.name}")
        for form in _FORMS:
            attrs, why = _FORM_BUILDERS[form](spec)
            model = None if why else _model_bytes(attrs, g.shape, w.shape, dtype)
            for runtime in (_ORT, _REF):
                name = _NAMES[runtime, form]
                if why:
                    result[name] = NotExpressible(why)
                    continue
                if runtime == _ORT and ort_why:
                    result[name] = NotExpressible(ort_why)
                    continue
                if runtime == _REF and spec.batch == 0:
                    result[name] = NotExpressible(
                        "onnx.reference's ConvTranspose cannot run an empty batch (N = 0): it "
                        "raises TypeError")
                    continue
                bug = _known_bug(runtime, form, spec)
                if bug is None:
                    result[name] = _run(runtime, model, g, w).astype(dtype, copy=False)
                    continue
                try:
                    y = _run(runtime, model, g, w).astype(dtype, copy=False)
                except Exception as error:  # the known bug raises: no result to compare
                    result[name] = NotExpressible(
                        f"{bug}; here it raises {first_line(error)}")
                else:
                    result[name] = KnownDifference(bug, y)
        return result

    @staticmethod
    def read(x_shape, w_shape, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
             output_padding=None, output_shape=None, pads=None, strides=None, b_shape=None):
        """An ONNX ``ConvTranspose`` node with these attributes, ``X`` of ``x_shape`` and ``W`` of
        ``w_shape`` = ``(C_in, C_out/group, *k)`` (tconv's layout; data ``(N, C, *sp)``).

        ``pads`` is ``[begin..., end...]``; ``b_shape`` is the shape of the optional input ``B``
        (the bias, ``(C_out,)``). onnxruntime and onnx.reference require
        ``output_padding < stride`` (the text allows up to the dilation): tconv follows the
        runtimes.
        """
        call = "ONNX ConvTranspose"
        x_shape, w_shape = shape_arg("x_shape", x_shape), shape_arg("w_shape", w_shape)
        nd = len(w_shape) - 2
        if len(x_shape) != nd + 2:
            raise ConvSpecError(f"{call}: X {x_shape} and W {w_shape} must have the same rank")
        if x_shape[1] != w_shape[0]:
            raise ConvSpecError(f"{call}: W {w_shape} must be (C, M/group, *k) with C = the "
                                f"{x_shape[1]} channels of X")
        if kernel_shape is not None and shape_arg("kernel_shape", kernel_shape) != w_shape[2:]:
            raise ConvSpecError(f"{call}: kernel_shape={list(kernel_shape)} differs from W's "
                                f"{list(w_shape[2:])}")
        if auto_pad not in _AUTO_PADS:
            raise ConvSpecError(f"{call} auto_pad must be one of {_AUTO_PADS}, got {auto_pad!r}")
        if pads is not None and auto_pad != "NOTSET":
            raise ConvSpecError(f"{call}: pads and auto_pad={auto_pad} cannot be used together")
        stride = ints("strides", 1 if strides is None else strides, nd)
        dilation = ints("dilations", 1 if dilations is None else dilations, nd)
        ops = ints("output_padding", 0 if output_padding is None else output_padding, nd, 0)
        for i, (op, s) in enumerate(zip(ops, stride)):
            if op >= s:
                raise ConvSpecError(f"{call}: output_padding={list(ops)} must be smaller than "
                                    f"strides={list(stride)} (onnxruntime and onnx.reference "
                                    f"refuse it; spatial dim {i})")
        if b_shape is not None and tuple(b_shape) != (w_shape[1] * group,):
            raise ConvSpecError(f"{call}: B must have shape (M,) = ({w_shape[1] * group},) for W "
                                f"{w_shape} and group {group}, got {tuple(b_shape)}", "B")
        pad_pairs = _onnx_pads(pads, nd)
        sizes = [None] * nd
        if output_shape is not None:
            sizes = shape_arg("output_shape", output_shape)
            sizes = sizes[2:] if len(sizes) == nd + 2 else sizes
            if len(sizes) != nd:
                raise ConvSpecError(f"{call} output_shape must have {nd} spatial sizes, got "
                                    f"{list(output_shape)}")
        dims = layer_dims(x_shape[2:], w_shape[2:], stride, dilation)
        args = dict(x_shape=x_shape, w_shape=w_shape, auto_pad=auto_pad, dilations=dilations,
                    group=group, kernel_shape=kernel_shape, output_padding=output_padding,
                    output_shape=output_shape, pads=pads, strides=strides, b_shape=b_shape)
        wins = [_onnx_window(dim, op, auto_pad, pair, n, i)
                for i, (dim, op, pair, n) in enumerate(zip(dims, ops, pad_pairs, sizes))]
        return make("onnx", call, args, batch=x_shape[0], c_in=x_shape[1],
                    c_out=w_shape[1] * group, kernel=w_shape[2:], stride=stride, dilation=dilation,
                    groups=group, size=x_shape[2:], wins=wins, layout=Layout.plain(nd),
                    bias=b_shape is not None)

    @staticmethod
    def write(spec: ConvSpec, options: dict) -> dict:
        """Explicit ``pads`` and ``output_padding`` (< stride); an output_padding past the stride
        (PyTorch allows it below the dilation) becomes zero cells added after the node."""
        reachable = [within(want, dim.full + dim.stride - 1)
                     for dim, want in zip(spec_dims(spec), windows(spec))]
        node_spec = spec_keeping(spec.output_shape, spec.weight_shape, spec.stride, spec.dilation,
                                 spec.groups, reachable, "ONNX ConvTranspose")
        attrs, why = pads_form(node_spec)
        if why:                                   # cannot happen for a canonical spec
            raise ConvSpecError(why)
        return dict(x_shape=spec.output_shape, w_shape=spec.weight_shape, **attrs,
                    b_shape=(spec.in_channels,) if options.get("bias") else None)

    @staticmethod
    def from_flags(size, k, in_channels, out_channels, stride, padding, output_padding,
                   output_shape, dilation, groups, auto_pad, batch, bias=False, **_):
        nd = len(size)
        mode, explicit = padding_words(padding)
        if mode is not None:
            raise ConvSpecError(f"ONNX ConvTranspose takes --padding as pads (ints) and the mode "
                                f"as --auto-pad SAME_UPPER/SAME_LOWER/VALID, got --padding "
                                f"{padding!r}")
        pads = None
        if explicit is not None:
            flat = tuple(iterable(explicit))
            if len(flat) == 2 * nd and not any(isinstance(p, Iterable) for p in flat):
                pads = list(per_dim("--padding", flat, 2 * nd))
            else:
                pairs = pair_list("--padding", explicit, nd, allow_negative=False)
                pads = [lo for lo, _ in pairs] + [hi for _, hi in pairs]
        if groups < 1 or out_channels % groups:
            raise ConvSpecError(f"ONNX ConvTranspose: --groups {groups} must divide --out-channels "
                                f"{out_channels}")
        optional = {"output_padding": output_padding, "output_shape": output_shape}
        return Onnx.read((batch, in_channels, *size), (in_channels, out_channels // groups, *k),
                         "NOTSET" if auto_pad is None else auto_pad.upper(), int_list(dilation, nd),
                         groups, list(k), pads=pads, strides=int_list(stride, nd),
                         b_shape=(out_channels,) if bias else None,
                         **{name: None if value is None else int_list(value, nd)
                            for name, value in optional.items()})

    def code(self, layer, crop, bias, runnable: bool = False):
        """A model: the ConvTranspose node (with ``B`` when there is a bias), then (only if the
        crop says so) Pad and Slice nodes, and the bias as an Add after added zeros. float32:
        onnxruntime's CPU ConvTranspose has no float64 kernel."""
        from ..convert.code import crop_widths

        after = bias and any(lo < 0 or hi < 0 for lo, hi in crop)
        attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in layer.kwargs.items()
                 if v is not None}
        inputs = '["x", "w", "b"]' if bias and not after else '["x", "w"]'
        node = call_text("helper.make_node", ['"ConvTranspose"', inputs, '["y"]'], attrs)

        def constant(name, value, dtype="np.int64"):
            return (f'initializers.append(numpy_helper.from_array(np.array({value}, {dtype}), '
                    f'"{name}"))')

        setup = [f"nodes = [{node}]",
                 'initializers = [numpy_helper.from_array(weight.astype(np.float32), "w")]']
        if bias and not after:
            setup.append('initializers.append(numpy_helper.from_array(bias.astype(np.float32), '
                         '"b"))')
        final = "y"
        pads, cuts = crop_widths(layer, crop)
        if pads:
            flat = [lo for lo, _ in pads] + [hi for _, hi in pads]
            setup += [f"# zero cells added, [begins..., ends...] per axis (crop "
                      f"{[list(c) for c in crop]})", constant("pads", flat),
                      f'nodes.append(helper.make_node("Pad", ["{final}", "pads"], ["padded"]))']
            final = "padded"
        if cuts:
            axes = [i for i, c in enumerate(cuts) if any(c)]
            values = {"starts": [cuts[i][0] for i in axes],
                      "ends": [-cuts[i][1] if cuts[i][1] else np.iinfo(np.int64).max
                               for i in axes], "axes": axes}
            setup.append(f"# crop {[list(c) for c in crop]}: cells off the start and end of each "
                         f"spatial dim")
            setup += [constant(name, v) for name, v in values.items()]
            setup.append(f'nodes.append(helper.make_node("Slice", ["{final}", "starts", "ends", '
                         f'"axes"], ["cropped"]))')
            final = "cropped"
        if after:
            shape = tuple(-1 if p == 1 else 1 for p in layer.layout.output)
            setup += ["# the bias, on the added zeros too",
                      'initializers.append(numpy_helper.from_array(bias.astype(np.float32)'
                      f'.reshape({shape}), "b"))',
                      f'nodes.append(helper.make_node("Add", ["{final}", "b"], ["biased"]))']
            final = "biased"
        x_shape = ["N", *layer.input_shape[1:]]
        y_shape = ["N", layer.spec.in_channels, *(n - lo - hi for n, (lo, hi) in
                                                  zip(layer.output_shape[2:], crop))]
        setup += [
            'graph = helper.make_graph(',
            '    nodes, "tconv_convert",',
            f'    [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, {x_shape})],',
            f'    [helper.make_tensor_value_info("{final}", onnx.TensorProto.FLOAT, {y_shape})],',
            '    initializers)',
            f'layer = helper.make_model(graph, opset_imports=[helper.make_opsetid("", {OPSET})], '
            f'ir_version={IR_VERSION})',
            'session = onnxruntime.InferenceSession(layer.SerializeToString(), '
            'providers=["CPUExecutionProvider"])']
        body = ['y = session.run(None, {"x": np.asarray(x, dtype=np.float32)})[0]',
                "return y.astype(np.result_type(x))    # computed in float32 (onnxruntime's "
                "ConvTranspose kernels)"]
        return (["import onnx", "import onnxruntime", "from onnx import helper, numpy_helper"],
                setup, body)

    def reads_object(self, obj) -> bool:
        return module_of(obj) == "onnx"

    def reads_model(self, model) -> bool:
        return is_file(model, ".onnx") or type(model).__name__ == "ModelProto"

    def find_layers(self, model, input_shape=None) -> list:
        """The ConvTranspose nodes of an ONNX model (or ``.onnx`` file) whose W (and B) are
        initializers, with X's shape from shape inference (``input_shape``: the graph input's
        shape, where it is not fixed)."""
        import onnx

        if is_file(model, ".onnx"):
            try:
                model = onnx.load(str(model))
            except Exception as error:
                raise ConvSpecError(f"onnx.load({str(model)!r}) failed: {type(error).__name__}: "
                                    f"{first_line(error)}", "model") from None
        shapes = graph_shapes(model, input_shape)
        nodes = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
        return [(node.name or f"ConvTranspose_{i}",
                 read_or_reason(self.read_layer, node, initializers=model.graph.initializer,
                                input_shape=shapes.get(node.input[0])))
                for i, node in enumerate(nodes)]

    def read_layer(self, obj, initializers=None, input_shape=None, node=None, **_):
        """An ONNX ``ConvTranspose`` node with ``initializers`` (W and B by name: a dict of
        arrays or a list of TensorProto), or a model holding it (``node``: its name, when the
        model has several); ``input_shape`` is X's shape (default: from the model's shape
        inference)."""
        import onnx
        from onnx import helper, numpy_helper

        from ..convert.objects import LayerRead, input_shape_arg

        if isinstance(obj, onnx.ModelProto):
            nodes = [n for n in obj.graph.node if n.op_type == "ConvTranspose"
                     and (node is None or n.name == node)]
            if len(nodes) != 1:
                raise ConvSpecError(f"the ONNX model has {len(nodes)} ConvTranspose nodes"
                                    + (f" named {node!r}" if node is not None else "")
                                    + ": give node= (one of their names)", "node")
            if input_shape is None:
                input_shape = graph_shapes(obj).get(nodes[0].input[0])
            initializers = list(obj.graph.initializer)
            obj = nodes[0]
        if not isinstance(obj, onnx.NodeProto) or obj.op_type != "ConvTranspose":
            raise ConvSpecError(f"tconv reads ONNX ConvTranspose nodes, not "
                                f"{getattr(obj, 'op_type', type(obj).__name__)}", "obj")
        arrays = ({t.name: numpy_helper.to_array(t) for t in initializers or ()}
                  if not isinstance(initializers, dict) else dict(initializers))
        names = list(obj.input) + [""] * (3 - len(obj.input))
        if names[1] not in arrays:
            raise ConvSpecError(f"ConvTranspose {obj.name!r}: its weight {names[1]!r} is not an "
                                f"initializer (tconv converts constant weights)", "initializers")
        w = np.asarray(arrays[names[1]])
        b = np.asarray(arrays[names[2]]) if names[2] else None
        if names[2] and names[2] not in arrays:
            raise ConvSpecError(f"ConvTranspose {obj.name!r}: its bias {names[2]!r} is not an "
                                f"initializer", "initializers")
        attrs = {a.name: helper.get_attribute_value(a) for a in obj.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        nd = w.ndim - 2
        shape = input_shape_arg(f"ONNX ConvTranspose {obj.name!r}", input_shape, w.shape[0], nd,
                                Layout.plain(nd))
        layer = Onnx.read(shape, w.shape, **attrs, b_shape=None if b is None else b.shape)

        def run(x):
            model = _model_bytes(attrs, (None,) + tuple(shape[1:]), w.shape, np.dtype(np.float32),
                                 with_bias=b is not None)
            feeds = {"X": np.asarray(x, np.float32), "W": w.astype(np.float32)}
            if b is not None:
                feeds["B"] = b.astype(np.float32)
            return _ort_session(model).run(None, feeds)[0]

        return LayerRead(layer, w, b, run)

    def cannot_run(self, layer) -> str | None:
        if not _ort_available():
            return "onnxruntime is not installed"
        return None

    def prepare(self) -> None:
        import onnxruntime

        onnxruntime.set_default_logger_severity(3)      # errors only: no shape warnings
