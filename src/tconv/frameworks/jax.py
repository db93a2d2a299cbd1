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

import numpy as np

from ..spec import ConvSpec, ConvSpecError
from . import KnownDifference, NotExpressible

NAME = "jax"

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


def way_names(ndim: int) -> list[str]:
    """The ways, in table order; lax is N-d, so the names do not depend on ``ndim``."""
    return [_VJP, _LINEAR, _DILATED, _EXPLICIT, _CONSISTENT, _STRING]


def input_grad_ways(spec: ConvSpec, w: np.ndarray, g: np.ndarray) -> dict:
    """dL/dx of ``spec`` for upstream gradient ``g`` every way JAX offers.

    ``w`` is ``(C_out, C_in/groups, *k)``, ``g`` is ``spec.output_shape``. Both are cast to
    ``np.result_type(g, w)`` (``g``'s dtype when they agree), the dtype of every result and the
    one ``tconv.verify`` judges in. A way that cannot express the spec gives
    :class:`NotExpressible`; nothing raises for a valid spec.
    """
    names = way_names(spec.ndim)
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


def _no_groups(spec: ConvSpec) -> NotExpressible | None:
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
    return _no_groups(spec) or _conv_transpose(spec, w, g, list(spec.transpose_padding))


def _conv_transpose_consistent(spec: ConvSpec, w: np.ndarray, g: np.ndarray):
    """``use_consistent_padding=True``: pairs are the forward padding, as in PyTorch, but there
    is no output_padding: lax pads ``dilation*(k-1) - pair`` per side, so the forward pair
    ``(pad_low, pad_high - output_padding)`` (possibly negative) gives the high side's
    ``dilation*(k-1) - pad_high + output_padding``."""
    import inspect

    from jax import lax

    if "use_consistent_padding" not in inspect.signature(lax.conv_transpose).parameters:
        return NotExpressible(
            f"{REASONS['version']} (jax {_version()}; it came with jax-ml/jax#32268)")
    pads = [(lo, hi - op) for (lo, hi), op in zip(spec.padding, spec.output_padding)]
    return _no_groups(spec) or _conv_transpose(spec, w, g, pads, use_consistent_padding=True)


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
    no_groups = _no_groups(spec)
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
