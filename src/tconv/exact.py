"""Exact results: the reference loops over Python integers, rounded once at the end.

Every finite binary float is an integer times a power of two. Scaling each array by its smallest
power of two turns it into Python integers, for which the naive loops of
:mod:`tconv.methods.reference` and :mod:`tconv.methods.scatter`
add and multiply without any rounding; the one rounding happens when the integer result is
divided back (Python's int / int is correctly rounded). Integer inputs stay integers.
"""
from __future__ import annotations

import math

import numpy as np

from .methods import reference, scatter
from .spec import ConvSpec, ConvSpecError

#: The most products the exact loops take on for one call (they run about 6 million Python-integer
#: products a second: this is about 10 s), and the most cells of one exact array (Python integers
#: take about 40 bytes a cell).
MAX_PRODUCTS = 60_000_000
MAX_CELLS = 10_000_000


def check_affordable(spec: ConvSpec) -> None:
    """A ConvSpecError naming the sizes if exact arithmetic of ``spec`` would take more than
    :data:`MAX_PRODUCTS` products or an array of more than :data:`MAX_CELLS` cells."""
    products = (spec.batch * math.prod(spec.output_size) * spec.out_channels
                * (spec.in_channels // spec.groups) * math.prod(spec.kernel_size))
    cells = max(math.prod(spec.input_shape), math.prod(spec.output_shape),
                math.prod(spec.weight_shape))
    if products > MAX_PRODUCTS or cells > MAX_CELLS:
        raise ConvSpecError(
            f"exact arithmetic of {spec.describe()} needs {products:,} integer products and "
            f"arrays of up to {cells:,} cells, over tconv.exact's limits of {MAX_PRODUCTS:,} "
            f"products and {MAX_CELLS:,} cells (about 10 s); check a smaller spec (the methods "
            f"themselves take any size that fits in memory: tconv.conv_transpose)", "input")


def _scaled_ints(a: np.ndarray) -> tuple[np.ndarray, int]:
    """``(ints, e)`` with ``a == ints * 2**-e`` exactly; ``ints`` is an object array of int."""
    a = np.asarray(a)
    if a.dtype.kind in "iu" or (a.dtype == object and all(isinstance(v, int) for v in a.flat)):
        return a.astype(object), 0
    if not np.all(np.isfinite(a)):
        raise ConvSpecError("exact arithmetic needs finite values; got inf or nan")
    ratios = [v.as_integer_ratio() for v in a.ravel()]
    shift = max((den.bit_length() - 1 for _, den in ratios), default=0)
    ints = np.empty(a.size, dtype=object)
    ints[:] = [num << (shift - (den.bit_length() - 1)) for num, den in ratios]
    return ints.reshape(a.shape), shift


def _integer(*arrays) -> bool:
    return all(np.asarray(a).dtype.kind in "iuO" for a in arrays)


def _unscale(ints: np.ndarray, shift: int, integer: bool) -> np.ndarray:
    if integer:
        return ints
    scale = 1 << shift
    return np.array([v / scale for v in ints.ravel()], dtype=np.float64).reshape(ints.shape)


#: Bytes per element of the operands and the result that exact arithmetic holds at most
#: (Python integers, their ratios and the object arrays; measured 80-140 with tracemalloc).
BYTES_PER_ELEMENT = 256


def _check_memory(name: str, spec: ConvSpec, result_shape, *arrays) -> None:
    """A ConvSpecError naming the sizes when exact arithmetic would exceed the memory limit."""
    from . import memory

    count = math.prod(result_shape) + sum(np.size(a) for a in arrays)
    need, limit = count * BYTES_PER_ELEMENT, memory.limit()
    if need > limit:
        raise ConvSpecError(
            f"the exact {name} of {spec.describe()} needs about {memory.show(need)} (Python "
            f"integers for {count} elements), more than the memory limit of "
            f"{memory.show(limit)} ({memory.source()})")


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The transposed convolution, exact, rounded once to float64 (Python ints for integers)."""
    _check_memory("transposed convolution", spec, spec.input_shape, y, w)
    yi, ey = _scaled_ints(y)
    wi, ew = _scaled_ints(w)
    return _unscale(scatter.conv_transpose(yi, wi, spec), ey + ew, _integer(y, w))


def conv(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The forward convolution, exact, rounded once to float64 (Python ints for integers)."""
    _check_memory("convolution", spec, spec.output_shape, x, w)
    xi, ex = _scaled_ints(x)
    wi, ew = _scaled_ints(w)
    return _unscale(reference.conv(xi, wi, spec), ex + ew, _integer(x, w))


def weight_grad(x: np.ndarray, g: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The weight gradient, exact, rounded once to float64 (Python ints for integers)."""
    _check_memory("weight gradient", spec, spec.weight_shape, x, g)
    xi, ex = _scaled_ints(x)
    gi, eg = _scaled_ints(g)
    return _unscale(reference.weight_grad(xi, gi, spec), ex + eg, _integer(x, g))


def wrap(ints: np.ndarray, dtype) -> np.ndarray:
    """Exact integers reduced into ``dtype`` modulo 2**bits, as NumPy's integer arithmetic wraps."""
    dtype = np.dtype(dtype)
    bits = 8 * dtype.itemsize
    low = int(np.iinfo(dtype).min)
    reduced = [(int(v) - low) % (1 << bits) + low for v in np.asarray(ints).ravel()]
    return np.array(reduced, dtype=dtype).reshape(np.shape(ints))


def conv_transpose_rounded(y: np.ndarray, w: np.ndarray, spec: ConvSpec, dtype) -> np.ndarray:
    """The exact transposed convolution rounded once, to nearest (ties to even), into ``dtype``.

    :func:`conv_transpose` rounds to float64; rounding that again to a narrower float can be off
    by one unit in the last place (double rounding). Here each exact value, a Fraction, picks the
    nearest of the float64 result's rounding in ``dtype`` and that value's two neighbours.
    """
    from fractions import Fraction

    dtype = np.dtype(dtype)
    yi, ey = _scaled_ints(y)
    wi, ew = _scaled_ints(w)
    ints = scatter.conv_transpose(yi, wi, spec)
    scale = 1 << (ey + ew)
    out = np.empty(ints.shape, dtype=dtype)
    inf = np.array(np.inf, dtype=dtype)
    for index, value in np.ndenumerate(ints):
        exact_value = Fraction(int(value), scale)
        guess = np.array(int(value) / scale).astype(dtype)
        candidates = [guess, np.nextafter(guess, -inf), np.nextafter(guess, inf)]
        out[index] = min(candidates, key=lambda c: (
            abs(Fraction(float(c)) - exact_value) if np.isfinite(c) else Fraction(2) ** 2000,
            int(c.view(f"u{dtype.itemsize}")) & 1))
    return out
