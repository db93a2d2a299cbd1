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

import numpy as np

from ..spec import ConvSpec
from . import KnownDifference, NotExpressible

NAME = "onnx"

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


def way_names(ndim: int) -> list[str]:
    return [_NAMES[runtime, form] for form in _FORMS for runtime in (_ORT, _REF)]


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


def _output_padding_order(op: int, stride: int) -> list[int]:
    """output_padding values ONNX accepts (< stride), the most natural first: 0, op, the rest."""
    return list(dict.fromkeys([0] + ([op] if op < stride else []) + list(range(stride))))


def _output_shape_form(spec: ConvSpec):
    """``output_shape = input_size``, auto_pad NOTSET: the larger half of the derived total
    padding goes to the start; ``output_padding`` (< stride) chooses the total."""
    ops = []
    for i, (o, n, (lo, hi), op, s, e) in enumerate(zip(
            spec.output_size, spec.input_size, spec.padding, spec.output_padding, spec.stride,
            spec.extents)):
        full = (o - 1) * s + e
        for cand in _output_padding_order(op, s):
            total = full + cand - n            # = lo + hi - op + cand
            if total >= 0 and ConvSpec.split_padding(total, odd_low=True)[0] == lo:
                ops.append(cand)
                break
        else:
            starts = sorted({ConvSpec.split_padding(full + c - n, True)[0] for c in range(s)
                             if full + c - n >= 0})
            return None, (
                f"output_shape with auto_pad NOTSET pads total - total//2 at the start, with "
                f"total = {full} + output_padding - {n} for output_padding 0..{s - 1}: start "
                f"padding {_show(starts)} in spatial dim {i}, but the spec has {lo}")
    attrs = _base_attrs(spec)
    attrs.update(output_shape=list(spec.input_size), output_padding=ops)
    return attrs, None


def _auto_pad_form(spec: ConvSpec):
    """SAME_UPPER, SAME_LOWER or VALID, whichever gives the spec's padding in every dim."""
    reasons = []
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
                fits = [c for c in _output_padding_order(op, s)
                        if e - s + c >= 0 and ConvSpec.split_padding(e - s + c, at_start)[0] == lo]
                if not fits:
                    starts = sorted({ConvSpec.split_padding(e - s + c, at_start)[0]
                                     for c in range(s) if e - s + c >= 0})
                    reasons.append(
                        f"{mode} pads total = {e} - {s} + output_padding (0..{s - 1}), giving "
                        f"start padding {_show(starts)} in spatial dim {i}, the spec has {lo}")
                    break
                ops.append(fits[0])
            else:
                attrs = _base_attrs(spec)
                attrs.update(auto_pad=mode, output_padding=ops)
                return attrs, None
    # VALID: no pads, size = full + output_padding; so lo == 0 and output_padding = op - hi.
    ops = []
    for i, (_, _, (lo, hi), op, s, _) in dims:
        if lo != 0 or not 0 <= op - hi < s:
            reasons.append(f"VALID crops nothing, the spec crops {lo} at the start and "
                           f"{hi - op} at the end in spatial dim {i}")
            break
        ops.append(op - hi)
    else:
        attrs = _base_attrs(spec)
        attrs.update(auto_pad="VALID", output_padding=ops)
        return attrs, None
    return None, "; ".join(reasons)


def _show(values) -> str:
    return ", ".join(map(str, values)) if values else "none"


_FORM_BUILDERS = {"pads": pads_form, "output_shape": _output_shape_form,
                  "auto_pad": _auto_pad_form}


# -- running a model ----------------------------------------------------------------------------

def _model_bytes(attrs: dict, x_shape, w_shape, dtype: np.dtype) -> bytes:
    from onnx import helper

    elem = helper.np_dtype_to_tensor_dtype(dtype)
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **attrs)
    graph = helper.make_graph(
        [node], "tconv_input_grad",
        [helper.make_tensor_value_info("X", elem, list(x_shape)),
         helper.make_tensor_value_info("W", elem, list(w_shape))],
        [helper.make_tensor_value_info("Y", elem, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="tconv")
    return model.SerializeToString()


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


def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
    """dL/dx of ``spec`` by ONNX ConvTranspose, each form in each runtime; see the module doc.

    ``g`` is ``spec.output_shape`` (ConvTranspose's X), ``w`` the forward weight (its W); each
    result is ``spec.input_shape`` in ``g``'s dtype.
    """
    dtype = np.dtype(g.dtype)
    result = {}
    if dtype.name not in _ONNX_DTYPES:
        return dict.fromkeys(way_names(spec.ndim), NotExpressible(
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
                    f"{bug}; here it raises {type(error).__name__}: {_first_line(error)}")
            else:
                result[name] = KnownDifference(bug, y)
    return result


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""
