"""The one memory limit of every computation.

Before it allocates anything, :func:`tconv.ops.run` adds up what the chosen method will hold at
its peak (each method module's ``extra_bytes``, next to its code) and the result, and refuses
with a :class:`~tconv.spec.ConvSpecError` naming the sizes when that exceeds :func:`limit`.

The limit, read at every call:

1. ``tconv.MEMORY_LIMIT`` when it is set (bytes, an int or a string such as ``"8G"``);
2. else the environment variable ``TCONV_MEMORY_LIMIT`` (the same spellings);
3. else half of the machine's memory (the smaller of the physical memory and a cgroup limit).

Why half: the estimates are upper bounds of the peak within a small factor, and the caller's
own arrays (the operands, what it keeps of earlier results) and the rest of the system need the
other half. A request beyond it would swap or be killed by the kernel's OOM killer rather than
finish; refusing it at once, with the sizes that caused it, is the better answer.
"""
from __future__ import annotations

import functools
import math
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from .spec import ConvSpecError

#: The environment variable of the limit.
ENV = "TCONV_MEMORY_LIMIT"
#: The share of the machine's memory the default limit allows.
SHARE = 0.5
#: The default limit where the machine's memory cannot be read.
FALLBACK = 8 << 30

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_bytes(value, name: str = ENV) -> int:
    """Bytes from an int or a string: ``"1000000"``, ``"512M"``, ``"8G"``, ``"1.5GiB"``
    (binary multiples: K = 1024 bytes); a ConvSpecError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise ConvSpecError(f"{name} must be a number of bytes such as 8G, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConvSpecError(f"{name} must be >= 0 bytes, got {value}")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ConvSpecError(
            f"{name} must be a number of bytes with an optional K, M, G, T suffix (8G, 512M), "
            f"got {value!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


@functools.lru_cache(maxsize=1)
def machine_bytes() -> int | None:
    """The memory this process may use: physical memory, or a smaller cgroup limit."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            sizes.append(int(text))
    sizes = [s for s in sizes if s > 0]
    return min(sizes) if sizes else None


def limit() -> int:
    """The limit in bytes now: ``tconv.MEMORY_LIMIT``, ``$TCONV_MEMORY_LIMIT`` or half of the
    machine's memory (see the module docstring)."""
    package = sys.modules.get("tconv")
    setting = getattr(package, "MEMORY_LIMIT", None)
    if setting is not None:
        return parse_bytes(setting, "tconv.MEMORY_LIMIT")
    env = os.environ.get(ENV)
    if env is not None and env.strip():
        return parse_bytes(env, ENV)
    total = machine_bytes()
    return int(total * SHARE) if total else FALLBACK


def show(n: float) -> str:
    """Bytes for people: ``512 B``, ``3.0 KiB``, ``2.98 GiB``, ``7.3 EiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"


def source() -> str:
    """Where the limit comes from, for messages."""
    package = sys.modules.get("tconv")
    if getattr(package, "MEMORY_LIMIT", None) is not None:
        return "tconv.MEMORY_LIMIT"
    if os.environ.get(ENV, "").strip():
        return f"${ENV}"
    return f"half of this machine's memory; set tconv.MEMORY_LIMIT or ${ENV} to change it"


# -- what one computation needs -------------------------------------------------------------------

#: Bytes every call may hold besides its arrays (NumPy's buffers, Python objects), and per
#: kernel tap (the short-lived objects of the per-tap loops: about 45 bytes measured, which
#: the cyclic collector frees in batches). The methods count their own lists of views.
OVERHEAD, PER_TAP = 256 << 10, 128


@dataclass(frozen=True)
class Need:
    """The bytes one computation holds at its peak, by part, for one method."""

    operation: str
    method: str
    result_shape: tuple[int, ...]
    result: int        # the result in the accumulation dtype, and cast to the returned one
    copies: int        # operands converted to the accumulation dtype or made contiguous
    work: int          # the method's own working memory (its module's ``extra_bytes``)
    nonfinite: int     # placing NaN and Inf (:mod:`tconv.nonfinite`), when an operand has them
    overhead: int

    @property
    def total(self) -> int:
        return self.result + self.copies + self.work + self.nonfinite + self.overhead

    def describe(self) -> str:
        parts = [f"the result {self.result_shape} {show(self.result)}",
                 f"the method's working memory {show(self.work)}"]
        if self.copies:
            parts.append(f"operand copies {show(self.copies)}")
        if self.nonfinite:
            parts.append(f"placing NaN/Inf {show(self.nonfinite)}")
        return f"about {show(self.total)} ({', '.join(parts)})"


def result_shape(operation: str, spec) -> tuple[int, ...]:
    return {"conv_transpose": spec.input_shape, "conv": spec.output_shape,
            "weight_grad": spec.weight_shape}[operation]


def need(operation: str, spec, method: str, a, b, dtype, finite: bool = True) -> Need:
    """What ``method`` needs for ``operation`` on ``spec`` with operands ``a``, ``b`` whose
    result has dtype ``dtype``, NaN/Inf placement included when ``finite`` is false."""
    from . import methods, nonfinite
    from ._arrays import compute_dtype

    compute = compute_dtype(dtype)
    size = math.prod(result_shape(operation, spec))
    result = size * compute.itemsize + (size * np.dtype(dtype).itemsize
                                        if np.dtype(dtype) != compute else 0)
    copies = sum(v.size * compute.itemsize for v in (a, b)
                 if v.dtype != compute or not v.flags.c_contiguous)
    work = methods.get(operation, method).module.extra_bytes(operation, spec, compute.itemsize)
    extra = 0
    if not finite:
        ispec = nonfinite.indicator_spec(operation, spec)
        counting = count_method(operation, ispec)
        extra = (nonfinite.extra_bytes(operation, spec, a.size, b.size, size, compute.itemsize)
                 + methods.get(operation, counting).module.extra_bytes(operation, ispec, 8))
    return Need(operation, method, result_shape(operation, spec), result, copies, work, extra,
                OVERHEAD + PER_TAP * math.prod(spec.kernel_size))


def count_method(operation: str, spec) -> str:
    """The method that counts NaN/Inf products on int64 indicators: auto's first choice for
    integers whose working memory fits the limit."""
    from . import methods
    from .methods import auto

    budget = limit()
    return auto.choose(operation, spec, np.int64, fits=lambda m: methods.get(
        operation, m).module.extra_bytes(operation, spec, 8) <= budget)


def plan(operation: str, spec, method: str, a, b, dtype, finite: bool = True) -> Need:
    """The method to run (``"auto"`` resolved to the first of its preference that fits) and
    what it needs; a ConvSpecError naming the sizes and the limit when nothing fits."""
    from .methods import auto

    budget = limit()
    if method == "auto":
        needs = []
        for candidate in auto.preference(operation, spec, dtype):
            found = need(operation, spec, candidate, a, b, dtype, finite)
            if found.total <= budget:
                return found
            needs.append(found)
        least = min(needs, key=lambda n: n.total)
        raise ConvSpecError(
            f"{operation} needs more memory than the limit of {show(budget)} ({source()}) by "
            f"every method; the least, method={least.method!r}, needs {least.describe()}: "
            f"{spec.describe()}")
    found = need(operation, spec, method, a, b, dtype, finite)
    if found.total > budget:
        raise ConvSpecError(
            f"{operation} by method={method!r} needs {found.describe()}, more than the memory "
            f"limit of {show(budget)} ({source()}): {spec.describe()}")
    return found
