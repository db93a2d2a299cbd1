"""JAX: ``jax.vjp`` / ``jax.linear_transpose`` of ``lax.conv_general_dilated``, the lhs-dilated
convolution, and ``lax.conv_transpose`` with three ways of saying the padding.

Layouts. ``lax`` takes any layout through ``dimension_numbers``; this adapter passes
``ConvDimensionNumbers(lhs_spec=(0, 1, 2, ...), rhs_spec=(0, 1, 2, ...), out_spec=(0, 1, ...))``,
which is PyTorch's ``(N, C, *spatial)`` data and ``(O, I, *k)`` weight for any number of spatial
dims (``lax.conv_transpose``'s own defaults are TensorFlow's NHWC / HWIO and stop at 3-d).

Conventions translated here (see ``docs/frameworks.md``):

* ``conv_general_dilated`` pads explicitly with ``(low, high)`` pairs, so asymmetric padding is
  native; negative pairs crop. ``rhs_dilation`` is PyTorch's ``dilation``, ``lhs_dilation`` is the
  zero insertion of a transposed convolution, ``feature_group_count`` is ``groups``.
* ``lax.conv_transpose(padding=[(lo, hi), ...])`` with the default ``use_consistent_padding=False``
  pads the zero-inserted input by ``(lo, hi)``: it is the padding of the *transposed* convolution,
  ``dilation*(k-1) - pad`` in PyTorch's terms (jax-ml/jax#32267). ``'SAME'``/``'VALID'`` and
  ``use_consistent_padding=True`` (jax-ml/jax#32268) use the forward convolution's padding.
* ``lax.conv_transpose`` neither flips the kernel nor swaps its channels unless
  ``transpose_kernel=True`` (jax-ml/jax#14337, by design since jax-ml/jax#592); it has no groups.
* ``float64`` and ``int64`` need x64 mode: every call runs inside ``jax.enable_x64(True)``, a
  context manager (thread-local), so the global setting other code sees is never changed.
* Integer convolutions are exact on CPU (wrapping modulo 2**bits like NumPy); automatic
  differentiation is not defined for integers (the cotangent is ``float0``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Iterable

import numpy as np

from ..convert.code import call_text
from ..convert.layer import (Layer, ints, make, need_dims, no_groups, pair_list, padding_words,
                             shape_arg)
from ..convert.layout import Layout, channels_last, identity, inverse, permuted
from ..convert.window import Dim, Pair, layer_dims, windows
from ..spec import ConvSpec, ConvSpecError, per_dim
from . import Framework, KnownDifference, NotExpressible, module_of

#: NumPy dtypes lax convolves on CPU (checked: integers exactly, modulo 2**bits).
_FLOATS = ("float16", "float32", "float64")
_INTEGERS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")

#: Every NotExpressible reason of this backend starts with one of these.
REASONS = {
    "dtype": "JAX has no CPU convolution for",
    "autodiff": "JAX differentiates floating inputs only",
    "groups": "lax.conv_transpose has no feature_group_count",
    "version": "this jax has no lax.conv_transpose(use_consistent_padding=...)",
    "string": "lax.conv_transpose's padding strings cannot express",
}

_VJP = "jax.vjp(lax.conv_general_dilated)"
_LINEAR = "jax.linear_transpose(lax.conv_general_dilated)"
_DILATED = "lax.conv_general_dilated(lhs_dilation)"
_EXPLICIT = "lax.conv_transpose(transpose_kernel=True)"
_CONSISTENT = "lax.conv_transpose(use_consistent_padding=True)"
_STRING = "lax.conv_transpose('SAME'/'VALID')"


#: XLA pass that aborts the process on some lhs-dilated convolutions in jaxlib 0.10.2 CPU
#: ("Window dimensions do not match RHS shape" in algebraic_simplifier.cc), e.g. a 2x3 input,
#: 3x2 kernel, stride 2, padding ((0, 2), (0, 0)); tests/test_convert.py shows the abort.
_CRASHING_PASS = "--xla_disable_hlo_passes=algsimp"


def disable_crashing_pass() -> None:
    """Turn off the XLA pass that aborts on some transposed convolutions, if jax has not
    started yet (XLA reads ``XLA_FLAGS`` once: after that, the process's flags stand). The
    pass only simplifies; turning it off costs compile-time optimisation, not correctness."""
    if "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        if _CRASHING_PASS not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {_CRASHING_PASS}".strip()


def import_jax():
    """``import jax`` after :func:`disable_crashing_pass`."""
    disable_crashing_pass()
    import jax

    return jax


def xla_negative_padding_bug(spec: ConvSpec, dtype) -> str | None:
    """The reason results may be wrong, if the spec meets openxla/xla#48713, else None.

    XLA's CPU convolution in float32 (and float16, computed through it) reads outside its input
    when a spatial dim has a negative low padding and a positive high padding of at most its
    magnitude. Every way here runs the transposed convolution as such a convolution, padded by
    ``ConvSpec.transpose_padding``, which is negative low when the forward padding exceeds
    ``dilation*(k-1)``. float64 and the integers take other code paths and are right (checked
    on the pinned jax 0.10.2).
    """
    if np.dtype(dtype).name not in ("float16", "float32"):
        return None
    for dim, (low, high) in enumerate(spec.transpose_padding):
        if low < 0 < high <= -low:
            return (f"XLA:CPU float convolutions read out of bounds with negative low and "
                    f"positive high padding (openxla/xla#48713): the transposed convolution "
                    f"pads spatial dim {dim} by ({low}, {high})")
    return None


# -- helpers ------------------------------------------------------------------------------------

def _numbers(spec: ConvSpec):
    """PyTorch's layouts as lax dimension numbers: (N, C, *spatial) and (O, I, *k), N-d."""
    from jax import lax

    order = tuple(range(spec.ndim + 2))
    return lax.ConvDimensionNumbers(lhs_spec=order, rhs_spec=order, out_spec=order)


def _as_numpy(a, dtype) -> np.ndarray:
    return np.asarray(a).astype(dtype, copy=False)


def _forward(spec: ConvSpec, w: np.ndarray):
    """``x -> conv(x, w)`` in lax, cut to ``spec.output_size`` (see :func:`_conv`)."""
    conv = _conv(spec)
    return lambda x: conv(x, w)


def _conv(spec: ConvSpec):
    """``(x, w) -> conv(x, w)`` in lax, cut to ``spec.output_size``.

    The forward output of ``spec.input_shape`` has more cells than ``g`` when
    ``output_padding >= stride`` (possible while ``output_padding < dilation``): the rows past
    ``output_size`` are not part of this spec's convolution, so they are sliced off.
    """
    from jax import lax

    keep = (slice(None),) * 2 + tuple(slice(0, m) for m in spec.output_size)

    def conv(x, w):
        y = lax.conv_general_dilated(x, w, window_strides=spec.stride, padding=spec.padding,
                                     rhs_dilation=spec.dilation, dimension_numbers=_numbers(spec),
                                     feature_group_count=spec.groups)
        return y[keep]

    return conv


def _vjp(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Reverse-mode autodiff: the vjp of the forward conv at any x (it is linear in x)."""
    jax = import_jax()

    forward = _forward(spec, w)
    # one jitted computation: XLA compiles the pullback once instead of op by op (3x faster
    # for the fresh shape of every spec a sweep draws)
    pull = jax.jit(lambda x, cotangent: jax.vjp(forward, x)[1](cotangent)[0])
    return _as_numpy(pull(np.zeros(spec.input_shape, g.dtype), g), g.dtype)


def _linear_transpose(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The transpose of the linear map ``x -> conv(x, w)``, without a point to linearise at."""
    jax = import_jax()

    transposed = jax.linear_transpose(_forward(spec, w),
                                      jax.ShapeDtypeStruct(spec.input_shape, g.dtype))
    return _as_numpy(jax.jit(lambda cotangent: transposed(cotangent)[0])(g), g.dtype)


def _swap_flip(w: np.ndarray, groups: int) -> np.ndarray:
    """(C_out, C_in/g, *k) -> (C_in, C_out/g, *k): channels swapped within each group, spatial
    axes reversed. The kernel of the ordinary convolution that equals the transposed one."""
    c_out, c_in_g, *kernel = w.shape
    blocks = w.reshape(groups, c_out // groups, c_in_g, *kernel)    # (g, C_out/g, C_in/g, *k)
    swapped = blocks.swapaxes(1, 2).reshape(groups * c_in_g, c_out // groups, *kernel)
    return np.ascontiguousarray(np.flip(swapped, axis=tuple(range(2, w.ndim))))


def _lhs_dilated(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Zero insertion as ``lhs_dilation=stride``, then an ordinary stride-1 convolution with the
    swapped, flipped kernel, padded by ``dilation*(k-1) - pad_low`` and
    ``dilation*(k-1) - pad_high + output_padding`` (``ConvSpec.transpose_padding``; negative
    values crop, which lax accepts)."""
    from jax import lax

    out = lax.conv_general_dilated(g, _swap_flip(w, spec.groups), window_strides=(1,) * spec.ndim,
                                   padding=spec.transpose_padding, lhs_dilation=spec.stride,
                                   rhs_dilation=spec.dilation, dimension_numbers=_numbers(spec),
                                   feature_group_count=spec.groups)
    return _as_numpy(out, g.dtype)


def _lax_no_groups(spec: ConvSpec) -> NotExpressible | None:
    if spec.groups == 1:
        return None
    return NotExpressible(
        f"{REASONS['groups']} (groups={spec.groups}): it convolves all {spec.out_channels} "
        f"input channels with every output channel, and transpose_kernel swaps the kernel's "
        f"channel axes as a whole, not per group")


def _conv_transpose(spec: ConvSpec, w: np.ndarray, g: np.ndarray, padding, **kwargs):
    """``lax.conv_transpose`` of the forward weight, labelled as the forward ``(O, I, *k)``:
    ``transpose_kernel=True`` flips the spatial axes and swaps O and I, so ``g`` (C_out
    channels) meets the swapped kernel's input axis."""
    from jax import lax

    out = lax.conv_transpose(g, w, strides=spec.stride, padding=padding,
                             rhs_dilation=spec.dilation, dimension_numbers=_numbers(spec),
                             transpose_kernel=True, **kwargs)
    return _as_numpy(out, g.dtype)


def _conv_transpose_explicit(spec: ConvSpec, w: np.ndarray, g: np.ndarray):
    """Explicit pairs, default ``use_consistent_padding=False``: the pairs pad the zero-inserted
    ``g`` directly, so they are the transposed padding ``dilation*(k-1) - pad (+ output_padding
    high)``, not the forward padding PyTorch takes."""
    return _lax_no_groups(spec) or _conv_transpose(spec, w, g, list(spec.transpose_padding))


def consistent_pairs(spec: ConvSpec) -> list[Pair]:
    """The pairs of ``lax.conv_transpose(use_consistent_padding=True)`` for ``spec``: the forward
    padding, as PyTorch's, but with no output_padding: ``(pad_low, pad_high - output_padding)``
    (possibly negative), so that lax's ``dilation*(k-1) - pair`` is the transposed padding."""
    return [(lo, hi - op) for (lo, hi), op in zip(spec.padding, spec.output_padding)]


def _conv_transpose_consistent(spec: ConvSpec, w: np.ndarray, g: np.ndarray):
    """``use_consistent_padding=True``: the pairs of :func:`consistent_pairs`."""
    import inspect

    from jax import lax

    if "use_consistent_padding" not in inspect.signature(lax.conv_transpose).parameters:
        return NotExpressible(
            f"{REASONS['version']} (jax {_version()}; it came with jax-ml/jax#32268)")
    return _lax_no_groups(spec) or _conv_transpose(spec, w, g, consistent_pairs(spec),
                                                   use_consistent_padding=True)


def string_specs(spec: ConvSpec) -> dict[str, ConvSpec | None]:
    """The spec lax means by ``'SAME'`` and by ``'VALID'`` for this ``g`` and kernel.

    'SAME': result size ``in * stride``, forward padding ``max(K - stride, 0)`` split with the
    odd cell high (tconv's transposed ``padding='same'`` with that output size; given explicitly
    because for K < stride it needs ``output_padding = stride - K``). 'VALID': no forward
    padding and result size ``in * stride + max(K - stride, 0)``, i.e.
    ``output_padding = max(stride - K, 0)``. K is the dilated kernel extent.
    """
    common = dict(stride=spec.stride, dilation=spec.dilation, groups=spec.groups)
    same_size = tuple(o * s for o, s in zip(spec.output_size, spec.stride))
    valid_op = tuple(max(s - e, 0) for s, e in zip(spec.stride, spec.extents))
    candidates = {"SAME": dict(padding="same", output_size=same_size),
                  "VALID": dict(padding="valid", output_padding=valid_op)}
    result = {}
    for mode, kwargs in candidates.items():
        try:
            result[mode] = ConvSpec.transpose(spec.output_shape, spec.weight_shape, **common,
                                              **kwargs)
        except ConvSpecError:
            result[mode] = None
    return result


def _conv_transpose_string(spec: ConvSpec, w: np.ndarray, g: np.ndarray):
    """``padding='SAME'`` or ``'VALID'``, when one of them is this spec's padding."""
    no_groups = _lax_no_groups(spec)
    if no_groups:
        return no_groups
    meant = string_specs(spec)
    mode = next((m for m, s in meant.items() if s == spec), None)
    if mode is None:
        def show(s):
            if s is None:
                return "no valid spec"
            return f"padding {s.padding}, output_padding {s.output_padding}"
        return NotExpressible(
            f"{REASONS['string']} padding {spec.padding} with output_padding "
            f"{spec.output_padding}: 'SAME' means {show(meant['SAME'])}, 'VALID' means "
            f"{show(meant['VALID'])}")
    return _conv_transpose(spec, w, g, mode)


def _x64(jax):
    """A thread-local context with x64 on: ``jax.enable_x64`` (this jax) or, in older jax
    (``>= 0.4.30`` is allowed), ``jax.experimental.enable_x64``."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64

    return enable_x64(True)


def _version() -> str:
    jax = import_jax()

    return jax.__version__


# -- the layers: lax.conv_transpose, lax.conv_general_dilated and flax ConvTranspose ----------

_LAX_DEFAULT = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"),
                3: ("NHWDC", "HWDIO", "NHWDC")}


def _lax_specs(dimension_numbers, nd: int, default: str) -> tuple[tuple[int, ...], ...]:
    """``(lhs_spec, rhs_spec, out_spec)``: the axis of N, C (O, I) and each spatial dim.

    ``dimension_numbers`` is None, three strings like ``("NHWC", "HWIO", "NHWC")`` or three int
    tuples (``lax.ConvDimensionNumbers``). Spatial dims are ordered as in the rhs string, as lax
    does. None means lax's default of the function: ``"channels_last"`` (conv_transpose, 1-3 d)
    or ``"iota"`` (conv_general_dilated: NCHW / OIHW).
    """
    if dimension_numbers is None:
        if default == "iota":
            return (identity(nd),) * 3
        if nd not in _LAX_DEFAULT:
            raise ConvSpecError(f"lax.conv_transpose has default dimension_numbers for 1-3 "
                                f"spatial dims only, this layer has {nd}; pass dimension_numbers")
        dimension_numbers = _LAX_DEFAULT[nd]
    try:
        lhs, rhs, out = dimension_numbers
    except (TypeError, ValueError):
        raise ConvSpecError(f"dimension_numbers must be three specs (lhs, rhs, out), got "
                            f"{dimension_numbers!r}") from None
    if all(isinstance(x, str) for x in (lhs, rhs, out)):
        return _lax_from_strings(lhs, rhs, out, nd)
    specs = tuple(per_dim("dimension_numbers", tuple(x), nd + 2) for x in (lhs, rhs, out))
    for spec in specs:
        if sorted(spec) != list(range(nd + 2)):
            raise ConvSpecError(f"dimension_numbers {dimension_numbers!r} must be permutations of "
                                f"0..{nd + 1}")
    return specs


def _lax_from_strings(lhs: str, rhs: str, out: str, nd: int):
    for text, pair in ((lhs, "NC"), (rhs, "OI"), (out, "NC")):
        spatial = set(text) - set(pair)
        if (len(text) != nd + 2 or len(set(text)) != len(text) or not set(pair) <= set(text)
            or spatial != set(rhs) - set("OI")):
            raise ConvSpecError(
                f"dimension_numbers ({lhs!r}, {rhs!r}, {out!r}) must each have {nd + 2} distinct "
                f"letters: N and C (O and I for the kernel) and the same spatial letters")
    order = [c for c in rhs if c not in "OI"]

    def spec(text, pair):
        return (text.index(pair[0]), text.index(pair[1])) + tuple(text.index(c) for c in order)

    return spec(lhs, "NC"), spec(rhs, "OI"), spec(out, "NC")


def _lax_layout(specs, ordinary: bool) -> Layout:
    lhs, rhs, out = specs
    return Layout(inverse(lhs), inverse(out), inverse(rhs), ordinary)


def _lax_window(dim: Dim, pair: Pair) -> Pair:
    """Explicit lax padding ``(a, b)`` pads the zero-inserted input (jax-ml/jax#32267): the
    result keeps cells ``[K - 1 - a, F - (K - 1 - b))`` of the full one."""
    k = dim.extent
    return k - 1 - pair[0], dim.full - (k - 1 - pair[1])


def _lax_string_windows(spec: ConvSpec) -> dict:
    """The windows lax.conv_transpose means by 'SAME' and 'VALID' (None where invalid)
    (:func:`string_specs`)."""
    return {mode: None if meant is None else windows(meant)
            for mode, meant in string_specs(spec).items()}


def _lax_windows(call: str, padding, dims, spec_for_strings, consistent: bool, nd: int):
    """Per-dim windows of lax.conv_transpose / Flax for a padding string or explicit pairs."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ConvSpecError(f"{call} padding must be 'SAME', 'VALID' (upper case) or "
                                f"(low, high) pairs, got {padding!r}")
        wins = _lax_string_windows(spec_for_strings())[padding]
        if wins is None:
            raise ConvSpecError(f"{call} padding {padding!r} keeps no cells for this layer")
        return list(wins)
    pairs = pair_list("padding", padding, nd, allow_negative=True)
    if consistent:      # the forward convolution's padding, as in PyTorch (jax-ml/jax#32268)
        return [(lo, dim.full - hi) for dim, (lo, hi) in zip(dims, pairs)]
    return [_lax_window(dim, pair) for dim, pair in zip(dims, pairs)]


def _lax_ints(call: str, name: str, value, nd: int) -> tuple[int, ...]:
    """lax takes per-dim sequences (an int raises inside lax); None means all ones."""
    if value is None:
        return (1,) * nd
    if not isinstance(value, Iterable) or isinstance(value, str):
        raise ConvSpecError(f"{call} {name} must be a sequence of {nd} ints, got {value!r}")
    return ints(name, value, nd)


def _provisional(batch, c_in, c_out, size, kernel, stride, dilation) -> ConvSpec:
    """A spec with the layer's sizes (padding 'valid'), to ask what lax's strings mean."""
    return ConvSpec.transpose((batch, c_in) + tuple(size), (c_in, c_out) + tuple(kernel),
                              stride=stride, padding="valid", dilation=dilation)


def _from_lax_general(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation, rhs_dilation,
                      dimension_numbers, feature_group_count, strides=None) -> Layer:
    call = "jax.lax.conv_general_dilated"
    if strides is not None:
        raise ConvSpecError(f"{call} has window_strides and lhs_dilation, not strides")
    lhs_shape, rhs_shape = shape_arg("lhs_shape", lhs_shape), shape_arg("rhs_shape", rhs_shape)
    nd = len(rhs_shape) - 2
    if len(lhs_shape) != nd + 2:
        raise ConvSpecError(f"{call}: lhs_shape {lhs_shape} and rhs_shape {rhs_shape} must have "
                            f"the same rank")
    if _lax_ints(call, "window_strides", window_strides, nd) != (1,) * nd:
        raise ConvSpecError(
            f"{call} with window_strides={window_strides!r} is not a transposed convolution: its "
            f"stride is lhs_dilation, and window_strides must be 1")
    stride = _lax_ints(call, "lhs_dilation", lhs_dilation, nd)
    dilation = _lax_ints(call, "rhs_dilation", rhs_dilation, nd)
    groups = feature_group_count
    specs = _lax_specs(dimension_numbers, nd, "iota")
    lhs = permuted(lhs_shape, specs[0])
    c_out, c_in_g, *kernel = permuted(rhs_shape, specs[1])
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ConvSpecError(f"{call} feature_group_count must be an int >= 1, got {groups!r}")
    if lhs[1] != c_in_g * groups:
        raise ConvSpecError(f"{call}: the input has {lhs[1]} channels, the kernel's I axis "
                            f"{c_in_g} x feature_group_count {groups} = {c_in_g * groups}")
    dims = layer_dims(lhs[2:], kernel, stride, dilation)
    if isinstance(padding, str):
        if any(s > 1 for s in stride):
            raise ConvSpecError(f"{call} refuses string padding with lhs_dilation > 1 ('String "
                                f"padding is not implemented for transposed convolution')")
        padding = _stride_one_string(call, padding, dims)
    pairs = pair_list("padding", padding, nd, allow_negative=True)
    args = dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape, window_strides=window_strides,
                padding=padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                dimension_numbers=dimension_numbers, feature_group_count=feature_group_count)
    wins = [_lax_window(dim, pair) for dim, pair in zip(dims, pairs)]
    return make("jax", call, args, batch=lhs[0], c_in=lhs[1], c_out=c_out, kernel=kernel,
                stride=stride, dilation=dilation, groups=groups, size=lhs[2:], wins=wins,
                layout=_lax_layout(specs, ordinary=True), wide=True)


def _stride_one_string(call: str, padding: str, dims) -> list[Pair]:
    """lax's forward padding strings at stride 1: total K - 1, the odd cell high (SAME_LOWER:
    low); VALID none."""
    mode = padding.upper()
    if mode not in ("SAME", "SAME_LOWER", "VALID"):
        raise ConvSpecError(f"{call} padding must be 'SAME', 'SAME_LOWER', 'VALID' or pairs, got "
                            f"{padding!r}")
    pairs = []
    for dim in dims:
        total = 0 if mode == "VALID" else dim.extent - 1
        pairs.append(ConvSpec.split_padding(total, odd_low=mode == "SAME_LOWER"))
    return pairs


def _jax_conv_transpose_args(spec: ConvSpec, padding, transpose_kernel: bool,
                             consistent: bool) -> dict:
    nd = spec.ndim
    specs = _lax_specs(None, nd, "channels_last")
    layout = _lax_layout(specs, ordinary=not transpose_kernel)
    # the layer's input y has spec.out_channels channels, its output x spec.in_channels
    logical = ((spec.out_channels, spec.in_channels) if transpose_kernel
               else (spec.in_channels, spec.out_channels))
    return dict(lhs_shape=permuted(spec.output_shape, layout.data),
                rhs_shape=permuted(logical + spec.kernel_size, layout.weight),
                strides=spec.stride, padding=padding, rhs_dilation=spec.dilation,
                dimension_numbers=_LAX_DEFAULT[nd], transpose_kernel=transpose_kernel,
                use_consistent_padding=consistent)


def _lax_padding(spec: ConvSpec, consistent: bool, outer=()):
    """``lax.conv_transpose(lhs, rhs, strides, padding, rhs_dilation, dimension_numbers,
    transpose_kernel, use_consistent_padding)``, or, given ``lhs_dilation``, the transposed
    convolution written as ``lax.conv_general_dilated(lhs, rhs, window_strides=1, padding,
    lhs_dilation=stride, rhs_dilation, dimension_numbers, feature_group_count)``.

    conv_transpose: default layout NHWC / HWIO (1-3 dims). Without ``transpose_kernel`` the
    kernel is used as it is, unflipped, as the ordinary kernel ``(I=C_in, O=C_out)``
    (jax-ml/jax#11252); with it, it is the forward kernel ``(I=C_out, O=C_in)``, TF's
    filter. Explicit pairs pad the zero-inserted input, ``dilation * (k - 1) - padding`` in
    PyTorch's terms (jax-ml/jax#17618, #32267), unless ``use_consistent_padding`` (#32268).
    ``'SAME'``/``'VALID'`` are TF's (``'VALID'`` is longer than PyTorch's padding 0 when
    stride > K, samuela/torch2jax PR #3). conv_general_dilated: default layout NCHW / OIHW;
    explicit pairs only (lax refuses strings with lhs_dilation); the kernel is the ordinary
    one, groups allowed.
    """
    wants = windows(spec)
    if not outer:
        for mode, wins in sorted(_lax_string_windows(spec).items(), reverse=True):
            if wins == wants:
                return mode
    outer = outer or ((0, 0),) * spec.ndim
    if consistent:        # the window [a, F - b): wider pairs are smaller here
        return tuple((lo - o_lo, hi - o_hi) for (lo, hi), (o_lo, o_hi) in
                     zip(consistent_pairs(spec), outer))
    # the padding of the zero-inserted input (_lax_window), wider by the zero cells to add
    return tuple((lo + o_lo, hi + o_hi) for (lo, hi), (o_lo, o_hi) in
                 zip(spec.transpose_padding, outer))


def _flax_pairs(padding, nd: int) -> list[Pair]:
    """Flax's ``canonicalize_padding``: an int for every side, or per dim an int or a pair."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        return [(padding, padding)] * nd
    return list(pair_list("padding", padding, nd, allow_negative=True))


def _code_flax(layer, crop, bias):
    from ..convert.code import crop_lines

    kwargs = dict(layer.kwargs, use_bias=bool(bias))
    params = '"kernel": jnp.asarray(weight)' + (', "bias": jnp.asarray(bias)' if bias else "")
    return (["import flax.linen as nn", "import jax.numpy as jnp"],
            [f"layer = {call_text('nn.ConvTranspose', [], kwargs)}",
             f'variables = {{"params": {{{params}}}}}'],
            ["y = layer.apply(variables, jnp.asarray(x))", *crop_lines(layer, crop),
             "return np.asarray(y)"])


class Jax(Framework):
    """JAX: six ways through lax and autodiff, the bench's jitted calls, and the layers
    ``lax.conv_transpose`` / ``lax.conv_general_dilated(lhs_dilation=stride)``."""

    name = "jax"
    title = "JAX"
    packages = ("jax",)
    rank = 30
    flag_call = "jax.lax.conv_transpose"
    flags_taken = ("--transpose-kernel", "--consistent-padding", "--groups")
    flag_hint = "its size is chosen by --padding"
    shape_args = ("lhs_shape", "rhs_shape")
    #: lax is N-d, so the names do not depend on the number of dims
    ways = (_VJP, _LINEAR, _DILATED, _EXPLICIT, _CONSISTENT, _STRING)

    @staticmethod
    def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
        """dL/dx of ``spec`` for upstream gradient ``g`` every way JAX offers.

        ``w`` is ``(C_out, C_in/groups, *k)``, ``g`` is ``spec.output_shape``. Both are cast to
        ``np.result_type(g, w)`` (``g``'s dtype when they agree), the dtype of every result and the
        one ``tconv.verify`` judges in. A way that cannot express the spec gives
        :class:`NotExpressible`; nothing raises for a valid spec.
        """
        names = Jax.way_names(spec.ndim)
        dtype = np.result_type(g, w)
        if dtype.name not in _FLOATS + _INTEGERS:
            return dict.fromkeys(names, NotExpressible(
                f"{REASONS['dtype']} {dtype.name} (floats: {', '.join(_FLOATS)}; "
                f"integers: {', '.join(_INTEGERS)})"))
        jax = import_jax()

        w = np.ascontiguousarray(w, dtype=dtype)
        g = np.ascontiguousarray(g, dtype=dtype)
        result: dict = {}
        with _x64(jax):                  # float64/int64 as themselves; undone on exit
            if dtype.kind == "f":
                result[_VJP] = _vjp(spec, w, g)
                result[_LINEAR] = _linear_transpose(spec, w, g)
            else:
                why = (f"{REASONS['autodiff']}: jax.vjp and jax.linear_transpose give {dtype.name} "
                       f"inputs a float0 cotangent (no values)")
                result[_VJP] = result[_LINEAR] = NotExpressible(why)
            result[_DILATED] = _lhs_dilated(spec, w, g)
            result[_EXPLICIT] = _conv_transpose_explicit(spec, w, g)
            result[_CONSISTENT] = _conv_transpose_consistent(spec, w, g)
            result[_STRING] = _conv_transpose_string(spec, w, g)
        bug = xla_negative_padding_bug(spec, dtype)
        if bug:
            result = {name: KnownDifference(bug, r) if isinstance(r, np.ndarray) else r
                      for name, r in result.items()}
        return {name: result[name] for name in names}

    @staticmethod
    def benchmark_callables(op: str, spec: ConvSpec, x: np.ndarray, w: np.ndarray,
                            g: np.ndarray) -> dict:
        """Zero-argument callables for ``tconv bench``, jitted, compiled and with their inputs on
        the device before timing: the forward convolution (``op == "conv"``) or its pullback with
        respect to x (``input_grad``, what ``jax.grad`` runs) or w (``weight_grad``). float32 only
        (float64 would need x64 mode around every call)."""
        if g.dtype != np.float32 or w.dtype != np.float32:
            return {}
        jax = import_jax()
        forward = _conv(spec)
        if op == "conv":
            fn, name = jax.jit(forward), "jax conv (jit)"
        else:
            wrt = 0 if op == "input_grad" else 1
            fn = jax.jit(lambda x, w, cotangent: jax.vjp(forward, x, w)[1](cotangent)[wrt])
            name = "jax vjp (jit)"
        args = [jax.device_put(a) for a in (x, w, g)][:2 if op == "conv" else 3]
        fn(*args).block_until_ready()
        return {name: lambda: fn(*args).block_until_ready()}

    @staticmethod
    def read(lhs_shape, rhs_shape, strides=None, padding=None, rhs_dilation=None,
             dimension_numbers=None, transpose_kernel=False, use_consistent_padding=False, *,
             window_strides=None, lhs_dilation=None, feature_group_count=1) -> Layer:
        """``lax.conv_transpose(lhs, rhs, strides, padding, rhs_dilation, dimension_numbers,
        transpose_kernel, use_consistent_padding)``, or, given ``lhs_dilation``, the transposed
        convolution written as ``lax.conv_general_dilated(lhs, rhs, window_strides=1, padding,
        lhs_dilation=stride, rhs_dilation, dimension_numbers, feature_group_count)``.

        conv_transpose: default layout NHWC / HWIO (1-3 dims). Without ``transpose_kernel`` the
        kernel is used as it is, unflipped, as the ordinary kernel ``(I=C_in, O=C_out)``
        (jax-ml/jax#11252); with it, it is the forward kernel ``(I=C_out, O=C_in)``, TF's filter.
        Explicit pairs pad the zero-inserted input, ``dilation * (k - 1) - padding`` in PyTorch's
        terms (jax-ml/jax#17618, #32267), unless ``use_consistent_padding`` (#32268).
        ``'SAME'``/``'VALID'`` are TF's (``'VALID'`` is longer than PyTorch's padding 0 when
        stride > K, samuela/torch2jax PR #3). conv_general_dilated: default layout NCHW / OIHW;
        explicit pairs only (lax refuses strings with lhs_dilation); the kernel is the ordinary
        one, groups allowed.
        """
        if lhs_dilation is not None or window_strides is not None:
            return _from_lax_general(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation,
                                     rhs_dilation, dimension_numbers, feature_group_count,
                                     strides=strides)
        call = "jax.lax.conv_transpose"
        lhs_shape, rhs_shape = shape_arg("lhs_shape", lhs_shape), shape_arg("rhs_shape", rhs_shape)
        nd = len(rhs_shape) - 2
        if len(lhs_shape) != nd + 2:
            raise ConvSpecError(f"{call}: lhs_shape {lhs_shape} and rhs_shape {rhs_shape} must "
                                f"have the same rank")
        if strides is None or padding is None:
            raise ConvSpecError(f"{call} needs strides and padding (it has no defaults)")
        specs = _lax_specs(dimension_numbers, nd, "channels_last")
        layout = _lax_layout(specs, ordinary=not transpose_kernel)
        lhs = permuted(lhs_shape, specs[0])
        logical = permuted(rhs_shape, specs[1])       # (O, I, *k) as labelled
        c_in = logical[0] if transpose_kernel else logical[1]
        c_out = logical[1] if transpose_kernel else logical[0]
        if lhs[1] != c_in:
            raise ConvSpecError(
                f"{call}: the input has {lhs[1]} channels but the kernel's "
                f"{'O' if transpose_kernel else 'I'} axis has {c_in}"
                + (" (transpose_kernel=True swaps I and O)" if transpose_kernel else ""))
        kernel = logical[2:]
        stride = _lax_ints(call, "strides", strides, nd)
        dilation = _lax_ints(call, "rhs_dilation", rhs_dilation, nd)
        dims = layer_dims(lhs[2:], kernel, stride, dilation)
        wins = _lax_windows(call, padding, dims, lambda: _provisional(
            lhs[0], c_in, c_out, lhs[2:], kernel, stride, dilation), use_consistent_padding, nd)
        args = dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape, strides=strides, padding=padding,
                    rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                    transpose_kernel=transpose_kernel,
                    use_consistent_padding=use_consistent_padding)
        return make("jax", call, args, batch=lhs[0], c_in=c_in, c_out=c_out, kernel=kernel,
                    stride=stride, dilation=dilation, groups=1, size=lhs[2:], wins=wins,
                    layout=layout, wide=True)

    @staticmethod
    def write(spec: ConvSpec, options: dict) -> dict:
        """lax.conv_transpose (lax's default channels-last layout) for one group and 1-3 dims, else
        the lhs-dilated lax.conv_general_dilated (channels-last up to 3 dims). Always exact."""
        if spec.groups == 1 and spec.ndim <= 3:
            return _jax_conv_transpose_args(spec, _lax_padding(spec, options["consistent"],
                                                               options.get("outer")),
                                            options["transpose_kernel"], options["consistent"])
        nd = spec.ndim
        numbers = _LAX_DEFAULT.get(nd)        # None (NCHW / OIHW) past 3 dims
        layout = _lax_layout(_lax_specs(numbers, spec.ndim, "iota"), ordinary=True)
        g = spec.groups
        # the ordinary kernel maps y's spec.out_channels to x's spec.in_channels
        return dict(lhs_shape=permuted(spec.output_shape, layout.data),
                    rhs_shape=permuted((spec.in_channels, spec.out_channels // g)
                                       + spec.kernel_size, layout.weight),
                    window_strides=(1,) * spec.ndim,    # pairs only: zeros as outer = no string
                    padding=_lax_padding(spec, False, options.get("outer") or ((0, 0),) * nd),
                    lhs_dilation=spec.stride,
                    rhs_dilation=spec.dilation, dimension_numbers=numbers, feature_group_count=g)

    @staticmethod
    def from_flags(size, k, in_channels, out_channels, stride, padding, dilation, groups,
                   transpose_kernel, consistent, batch, **_):
        if padding is None:
            raise ConvSpecError("jax.lax.conv_transpose has no default padding: give --padding "
                                "same, valid or (low:high) pairs")
        mode, explicit = padding_words(padding)
        nd = len(size)
        lax_padding = (mode.upper() if mode is not None
                       else pair_list("--padding", explicit, nd, True))
        stride, dilation = ints("--stride", stride, nd), ints("--dilation", dilation, nd)
        if groups > 1 or nd > 3:
            if mode is not None or consistent or transpose_kernel:
                raise ConvSpecError(
                    "with groups or more than 3 dims the JAX layer is lax.conv_general_dilated("
                    "lhs_dilation=stride), which takes explicit (transposed) padding pairs only: "
                    "no same/valid, --consistent-padding or --transpose-kernel")
            if groups < 1 or in_channels % groups:
                raise ConvSpecError(f"--groups {groups} must divide --in-channels {in_channels}")
            numbers = _LAX_DEFAULT.get(nd)
            layout = _lax_layout(_lax_specs(numbers, nd, "iota"), True)
            return Jax.read(permuted((batch, in_channels, *size), layout.data),
                            permuted((out_channels, in_channels // groups, *k), layout.weight),
                            None, lax_padding, dilation, numbers, window_strides=(1,) * nd,
                            lhs_dilation=stride, feature_group_count=groups)
        rhs = ((*k, out_channels, in_channels) if transpose_kernel
               else (*k, in_channels, out_channels))
        return Jax.read((batch, *size, in_channels), rhs, stride, lax_padding, dilation, None,
                        transpose_kernel, consistent)

    def code(self, layer, crop, bias, runnable: bool = False):
        """A function ``layer(x)``: the lax call, the crop, then the bias; in ``x``'s dtype."""
        from ..convert.code import crop_lines

        kwargs = {k: v for k, v in layer.kwargs.items() if v is not None}
        if not kwargs.get("use_consistent_padding", True):
            del kwargs["use_consistent_padding"]           # the default; older jax lacks the name
        if layer.call.endswith("conv_general_dilated"):
            kwargs.setdefault("window_strides", (1,) * layer.spec.ndim)
        func = layer.call.replace("jax.lax.", "lax.")
        call = call_text(func, ["x", "weight.astype(x.dtype)"], kwargs, "    ")
        setup = ["weight = jnp.asarray(weight)", "", "", "def layer(x):",
                 f'    """{layer.call}' + (", the crop" if any(map(any, crop)) else "")
                 + (" and the bias" if bias else "") + '."""', f"    y = {call}",
                 *[f"    {line}" for line in crop_lines(layer, crop, "bias" if bias else None)],
                 "    return y"]
        return (["import jax.numpy as jnp", "from jax import lax"], setup,
                ["return np.asarray(layer(jnp.asarray(x)))"])

    def bias_code(self, bias: str, shape) -> str:
        return f"y = y + jnp.asarray({bias}, y.dtype).reshape({shape})"

    def pad_code(self, widths) -> str:
        return f"y = jnp.pad(y, {tuple(widths)})"

    def prepare(self) -> None:
        disable_crashing_pass()


class Flax(Framework):
    """Flax: the ``flax.linen.ConvTranspose`` layer (lax.conv_transpose underneath)."""

    name = "flax"
    title = "Flax"
    packages = ("flax",)             # linen and NNX, on jax
    rank = 35
    flag_call = "flax.linen.ConvTranspose"
    flags_taken = ("--transpose-kernel",)
    flag_hint = "its size is chosen by --padding; no groups"
    shape_args = ("input_shape",)

    @staticmethod
    def read(input_shape, features, kernel_size, strides=None, padding="SAME",
             kernel_dilation=None, use_bias=True, transpose_kernel=False) -> Layer:
        """``flax.linen.ConvTranspose(features, kernel_size, strides, padding, kernel_dilation,
        use_bias, transpose_kernel)`` applied to ``input_shape`` (channels-last).

        As documented (and in its source), the module calls ``lax.conv_transpose(x, kernel,
        strides, padding, rhs_dilation=kernel_dilation, transpose_kernel=transpose_kernel)`` with
        lax's default layout: so an int or pair padding is the padding of the zero-inserted input,
        not PyTorch's (google/flax#4593, documented by flax PR #4990). The kernel is
        ``(*k, C_in, features)``, or ``(*k, features, C_in)`` with ``transpose_kernel``. No
        groups; ``'CIRCULAR'`` padding wraps the result around and is not a zero-padded transposed
        convolution.
        """
        call = "flax.linen.ConvTranspose"
        kernel = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
        nd = len(kernel)
        need_dims(call, nd)
        input_shape = shape_arg("input_shape", input_shape, nd + 2)
        if isinstance(padding, str) and padding == "CIRCULAR":
            raise ConvSpecError(f"{call} padding='CIRCULAR' sums the result periodically: it is "
                                f"not a zero-padded transposed convolution, and no other "
                                f"framework has it")
        lax_padding = padding if isinstance(padding, str) else _flax_pairs(padding, nd)
        rhs = ((*kernel, features, input_shape[-1]) if transpose_kernel
               else (*kernel, input_shape[-1], features))
        stride = ints("strides", 1 if strides is None else strides, nd)
        dilation = ints("kernel_dilation", 1 if kernel_dilation is None else kernel_dilation, nd)
        lax_layer = Jax.read(input_shape, rhs, stride, lax_padding, dilation, None,
                             transpose_kernel)
        args = dict(input_shape=input_shape, features=features, kernel_size=kernel_size,
                    strides=strides, padding=padding, kernel_dilation=kernel_dilation,
                    use_bias=use_bias, transpose_kernel=transpose_kernel)
        return replace(lax_layer, framework="flax", call=call, args=args, bias=bool(use_bias))

    @staticmethod
    def write(spec: ConvSpec, options: dict) -> dict:
        """What flax.linen.ConvTranspose passes to lax.conv_transpose: the same padding as the
        jax target (strings when exact, else explicit pairs), channels-last. No groups."""
        call = "flax.linen.ConvTranspose"
        need_dims(call, spec.ndim)
        no_groups(call, spec)
        return dict(input_shape=permuted(spec.output_shape, channels_last(spec.ndim)),
                    features=spec.in_channels, kernel_size=spec.kernel_size, strides=spec.stride,
                    padding=_lax_padding(spec, False, options.get("outer")),
                    kernel_dilation=spec.dilation,
                    use_bias=options.get("bias", False),
                    transpose_kernel=options["transpose_kernel"])

    @staticmethod
    def from_flags(size, k, in_channels, out_channels, stride, padding, dilation, transpose_kernel,
                   batch, bias=False, **_):
        mode, explicit = padding_words("same" if padding is None else padding)
        return Flax.read((batch, *size, in_channels), out_channels, k, stride,
                         mode.upper() if mode is not None else explicit, dilation, bias,
                         transpose_kernel)

    def reads_object(self, obj) -> bool:
        return module_of(obj) == "flax"

    def read_layer(self, obj, params=None, input_shape=None, **_):
        """A ``flax.linen.ConvTranspose`` with ``params`` (its variables, or their ``"params"``)
        or a ``flax.nnx.ConvTranspose``, on ``input_shape`` (channels-last): its arguments,
        kernel ``(*k, C_in, features)`` (``(*k, features, C_in)`` with transpose_kernel) and
        bias."""
        from flax import linen, nnx

        from ..convert.objects import LayerRead, input_shape_arg

        if isinstance(obj, nnx.ConvTranspose):
            call, features = "flax.nnx.ConvTranspose", obj.out_features
            kernel = np.asarray(obj.kernel[...])
            bias = np.asarray(obj.bias[...]) if obj.use_bias else None

            def run(x):
                return np.asarray(obj(x))
        elif isinstance(obj, linen.ConvTranspose):
            call, features = "flax.linen.ConvTranspose", obj.features
            if params is None:
                raise ConvSpecError(f"{call} keeps no weights: give params (its variables)",
                                    "params")
            variables = params if "params" in params else {"params": params}
            kernel = np.asarray(variables["params"]["kernel"])
            bias = (np.asarray(variables["params"]["bias"]) if obj.use_bias else None)

            def run(x):
                return np.asarray(obj.apply(variables, x))
        else:
            raise ConvSpecError(f"tconv reads flax.linen.ConvTranspose and "
                                f"flax.nnx.ConvTranspose, not {type(obj).__name__}", "obj")
        nd = kernel.ndim - 2
        c_in = kernel.shape[-1] if obj.transpose_kernel else kernel.shape[-2]
        shape = input_shape_arg(call, input_shape, c_in, nd, _lax_layout(
            _lax_specs(None, nd, "channels_last"), ordinary=True))
        padding = obj.padding if isinstance(obj.padding, (str, int)) else tuple(obj.padding)
        layer = Flax.read(shape, features, tuple(kernel.shape[:nd]), obj.strides, padding,
                          obj.kernel_dilation, obj.use_bias, obj.transpose_kernel)
        return LayerRead(replace(layer, call=call), kernel, bias, run)

    def code(self, layer, crop, bias, runnable: bool = False):
        """``flax.linen.ConvTranspose`` and its variables (kernel and bias)."""
        return _code_flax(layer, crop, bias)

    def pad_code(self, widths) -> str:
        return f"y = jnp.pad(y, {tuple(widths)})"

    def prepare(self) -> None:
        disable_crashing_pass()
