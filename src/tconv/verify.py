"""Check every way of computing an input gradient against exact arithmetic, for one spec.

The error bound. A float computation of one output cell sums ``n`` products (``n`` is
``ConvSpec.terms_per_output``). In any order, with or without fused multiply-adds, the classic
bound holds: ``|computed - exact| <= gamma_n * sum |w_j * g_i|`` with ``gamma_n = n*u / (1 - n*u)``
and ``u`` the unit roundoff of the result dtype, plus ``(u + 2**-52) * |exact|`` for the final
rounding and those of the exact reference and of the comparison, both in float64. The
sum of magnitudes is the transposed convolution of ``|g|`` with ``|w|``. Integer results must be
exact.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from . import exact
from .methods import scatter
from .methods import METHODS
from .ops import convolve, transpose
from .spec import ConvSpec, ConvSpecError


def unit_roundoff(dtype) -> float:
    """``u = eps / 2`` of a float dtype, 0 for integers."""
    dtype = np.dtype(dtype)
    return 0.0 if dtype.kind in "iu" else float(np.finfo(dtype).eps) / 2


def gamma(n: int, u: float) -> float:
    """``n*u / (1 - n*u)``: the relative error bound of summing n products in floating point."""
    return float("inf") if n * u >= 1 else n * u / (1 - n * u)


def error_bound(g: np.ndarray, w: np.ndarray, spec: ConvSpec, exact_result: np.ndarray,
                dtype=None) -> np.ndarray:
    """Per-cell bound of ``|computed - exact|`` for a transposed convolution in ``dtype``."""
    u = unit_roundoff(dtype if dtype is not None else np.result_type(g, w))
    if u == 0:
        return np.zeros(spec.input_shape)
    magnitudes = scatter.conv_transpose(np.abs(g.astype(np.float64)),
                                          np.abs(w.astype(np.float64)), spec)
    # the float64 magnitude sum is itself rounded; 1 + 2**-40 covers it for any realistic n.
    # The final term covers the result's own rounding (u), the exact reference's rounding to
    # float64 and the comparison's (2 * 2**-53): these matter for longdouble results.
    return (gamma(spec.terms_per_output, u) * magnitudes * (1 + 2.0**-40)
            + (u + 2.0**-52) * np.abs(exact_result.astype(np.float64)))


@dataclass(frozen=True)
class DotTest:
    """The adjoint test ``<conv(x, w), y> == <x, conv_transpose(y, w)>``."""

    lhs: float
    rhs: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return abs(self.lhs - self.rhs) <= self.tolerance


def dot_test(spec: ConvSpec, *, method: str = "auto", forward_fn=None, adjoint_fn=None,
             dtype=np.int64, seed: int = 0) -> DotTest:
    """The dot-product (adjoint) test of a convolution and its transpose, for one spec.

    Draws random ``x`` (``spec.input_shape``), ``w`` and ``y`` (``spec.output_shape``) and
    compares ``<conv(x, w), y>`` with ``<x, conv_transpose(y, w)>``. With an integer ``dtype``
    (the default, small values) both sides are exact and must be equal; with a float dtype they
    must agree within a rounding bound. ``forward_fn(x, w, spec)`` and
    ``adjoint_fn(y, w, spec)`` default to tconv's own; pass yours to test another pair.

    Examples
    --------
    >>> import tconv
    >>> spec = tconv.ConvSpec.forward((2, 4, 7, 6), (6, 2, 3, 2), stride=(2, 3), padding=1,
    ...                               groups=2)
    >>> tconv.dot_test(spec).passed
    True
    """
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)

    def draw(shape):
        if dtype.kind in "iu":
            return rng.integers(-4, 5, size=shape).astype(dtype)
        return rng.standard_normal(shape).astype(dtype)

    x, w, y = draw(spec.input_shape), draw(spec.weight_shape), draw(spec.output_shape)
    fwd = (forward_fn or convolve)(x, w, spec)
    adj = adjoint_fn(y, w, spec) if adjoint_fn else transpose(y, w, spec, method)
    wide = np.int64 if dtype.kind in "iu" else np.float64
    lhs = np.vdot(np.asarray(fwd, dtype=wide), y.astype(wide))
    rhs = np.vdot(x.astype(wide), np.asarray(adj, dtype=wide))
    u = unit_roundoff(dtype)
    tolerance = 0.0
    if u:
        size = max(y.size, x.size)
        scale = np.vdot(np.abs(convolve(np.abs(x).astype(wide), np.abs(w).astype(wide),
                                             spec)), np.abs(y).astype(wide))
        tolerance = 2 * gamma(spec.terms_per_output + size, u) * float(scale)
    return DotTest(lhs.item(), rhs.item(), tolerance)


@dataclass
class Row:
    """One way of computing the input gradient and how it compares with the exact result."""

    name: str
    source: str                      # "tconv" or a backend name
    status: str    # PASS, FAIL, N/A (not expressible), KNOWN (documented), REFUSED (a converter's
                   # refusal), CRASH (its process died)
    max_abs_diff: float | None = None
    bound: float | None = None
    note: str = ""
    result: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass
class Report:
    """Every row for one spec and one set of data."""

    spec: ConvSpec
    dtype: str
    exact: np.ndarray = field(repr=False)
    rows: list[Row]

    @property
    def passed(self) -> bool:
        return all(row.status in ("PASS", "N/A", "KNOWN", "REFUSED") for row in self.rows)

    def to_dict(self) -> dict:
        return {
            "spec": self.spec.to_dict(),
            "dtype": self.dtype,
            "passed": self.passed,
            "rows": [{k: v for k, v in asdict(row).items() if k != "result"}
                     for row in self.rows],
        }


def compare(name: str, source: str, result, exact_result: np.ndarray,
            bound: np.ndarray) -> Row:
    """A row for one result: PASS if every cell is within its bound of the exact value."""
    result = np.asarray(result)
    if result.shape != exact_result.shape:
        return Row(name, source, "FAIL", note=f"shape {result.shape}, expected "
                   f"{exact_result.shape}", result=result)
    if exact_result.dtype.kind in "iu":   # integers: exact, compared without rounding
        diff = np.abs(result.astype(object) - exact_result.astype(object)).astype(np.float64)
    else:
        diff = np.abs(result.astype(np.float64) - exact_result.astype(np.float64))
    ok = bool(np.all(diff <= bound))
    return Row(name, source, "PASS" if ok else "FAIL",
               float(diff.max(initial=0.0)), float(bound.max(initial=0.0)), result=result)


def _method_row(method: str, g, w, spec: ConvSpec, truth, bound) -> Row:
    """One tconv method's row; a method whose memory the limit refuses (zero insertion with a
    stride of 10**9, say) is N/A with the sizes, and the others still run."""
    try:
        result = transpose(g, w, spec, method)
    except ConvSpecError as e:
        return Row(f"tconv {method}", "tconv", "N/A", note=f"not computed: {e}")
    return compare(f"tconv {method}", "tconv", result, truth, bound)


def verify(spec: ConvSpec, w: np.ndarray, g: np.ndarray, *, methods=METHODS,
           backends=()) -> Report:
    """Compute the input gradient of ``spec`` for upstream gradient ``g`` every way; compare.

    ``backends`` are names of frameworks with ways (:func:`tconv.frameworks.with_ways`); a way
    that cannot express the spec gives an ``N/A`` row with the reason, a converter that refuses
    the layer a ``REFUSED`` row with its message, one whose process dies a ``CRASH`` row.
    """
    from . import frameworks

    dtype = np.result_type(g, w)
    truth = exact.conv_transpose(g, w, spec)
    if dtype.kind in "iu":
        truth = exact.wrap(truth, dtype)
    bound = error_bound(g, w, spec, truth)
    rows = [_method_row(m, g, w, spec, truth, bound) for m in methods]
    for name in backends:
        for way, result in frameworks.get(name).input_grad_ways(spec, w, g).items():
            if isinstance(result, frameworks.NotExpressible):
                rows.append(Row(way, name, "N/A", note=f"not expressible: {result.reason}"))
            elif isinstance(result, frameworks.Refused):
                rows.append(Row(way, name, "REFUSED", note=f"refused: {result.reason}"))
            elif isinstance(result, frameworks.Broken):
                rows.append(Row(way, name, "FAIL", note=f"converted, but: {result.reason}"))
            elif isinstance(result, frameworks.Crashed):
                rows.append(Row(way, name, "CRASH", note=f"crashed: {result.reason}"))
            elif isinstance(result, frameworks.KnownDifference) and isinstance(
                    result.result, frameworks.Broken):   # a documented reason it cannot run
                rows.append(Row(way, name, "KNOWN", note=f"known difference: {result.reason}; "
                                f"{result.result.reason}"))
            elif isinstance(result, frameworks.KnownDifference):
                row = compare(way, name, result.result, truth, bound)
                if row.status == "FAIL":
                    row.status, row.note = "KNOWN", f"known difference: {result.reason}"
                rows.append(row)
            else:
                rows.append(compare(way, name, result, truth, bound))
    return Report(spec, dtype.name, truth, rows)
