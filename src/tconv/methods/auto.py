"""The cost model behind ``method="auto"``: a few lines of arithmetic on the shape, no timing.

The fast methods do exactly the useful multiply-adds ``U = N * prod(out) * C_out * C_in/g * K``
(``K = prod(kernel)``) in BLAS; they differ in the memory traffic around the GEMM and in the
shape of the GEMM:

* ``fast_gemm``: one GEMM of inner size ``C_out/g``, then col2im adds ``N*prod(out)*K*C_in``
  elements, one strided add per tap;
* ``fast_polyphase``: one GEMM of inner size ``T*C_out/g`` per phase a tap reaches (at most
  ``prod(stride)``; ``T`` taps per phase, about ``K / prod(stride)``); each phase first gathers
  ``T`` shifted copies of the gradient, ``N*prod(out)*K*C_out`` elements in all when the output
  is much longer than the kernel (:func:`.fast_polyphase.gathered` counts them exactly), none
  when the stride equals the kernel (``T == 1``);
* ``fast_polyphase_cf``: the same phases channels-first, one GEMM per sample and group, without
  the two layout copies; :func:`preference` takes it by a rule read off measurements, not by
  :func:`estimate`;
* ``fast_native`` (compiled, optional): first wherever it is built and takes the dtype
  (:func:`native_wins`, with the predicates of :mod:`.fast_native` itself), a rule read off
  side-by-side measurements (``tconv bench`` on a quiet machine) and the memory bar.

Memory is a constraint, not a cost: :func:`choose` takes the first method of
:func:`preference` whose peak (each method module's ``extra_bytes``) fits the memory limit.

A GEMM whose inner size or output width is small runs below the BLAS peak: modelled as
``min(1, inner / 64) * min(1, width / 32)``. Depthwise layers (one channel in and out per
group) make ``fast_gemm`` multiply-add per tap, two elementwise passes per tap.
The constants are relative rates measured on a 2-core AVX2 machine; only their ratios matter.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Iterator

import numpy as np

from .._arrays import compute_dtype
from ..spec import ConvSpec
from . import fast_gemm, fast_native, fast_polyphase
from .polyphase import phases, table

GEMM_FLOPS = 50e9       # float32 GEMM flop/s at full efficiency
ADD_RATE = 1.0e9        # elements/s of a strided numpy add (read, add, write)
COPY_RATE = 2.0e9       # elements/s of a numpy gather copy
CALL = 5e-6             # seconds per numpy call in the Python loops


def _gemm_seconds(flops: float, inner: int, width: int) -> float:
    """A GEMM below peak when its inner size or its output width is small (towards GEMV)."""
    return flops / (GEMM_FLOPS * min(1.0, inner / 64) * min(1.0, width / 32))


def estimate(spec: ConvSpec, method: str) -> float:
    """Model seconds of one fast method on ``spec`` (comparable between methods only)."""
    g = spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    k = math.prod(spec.kernel_size)
    cells = spec.batch * math.prod(spec.output_size)
    useful = 2.0 * cells * spec.out_channels * ci * k
    layout = (cells * spec.out_channels + spec.batch * math.prod(spec.input_size)
              * spec.in_channels) / COPY_RATE
    if method == "fast_gemm":
        if fast_gemm.tiles(spec) and not fast_gemm.depthwise(spec):
            return _gemm_seconds(useful, co, k * ci) + layout   # tiles: no col2im adds
        if fast_gemm.depthwise(spec):  # a multiply and an add per tap, no GEMM
            return 2 * cells * k * spec.in_channels / ADD_RATE + k * CALL + layout
        return (_gemm_seconds(useful, co, k * ci) + cells * k * spec.in_channels / ADD_RATE
                + k * CALL + layout)
    if method == "fast_polyphase":
        combos = max(1, math.prod(len(table(spec, d)) for d in range(spec.ndim)))
        taps = max(1, k // combos)
        gather = 0.0 if taps == 1 else fast_polyphase.gathered(spec) / COPY_RATE
        return (_gemm_seconds(useful, taps * co, ci) + gather + combos * (taps + 4) * CALL
                + layout)
    raise ValueError(f"no cost model for method {method!r}")


def choose(operation: str, spec: ConvSpec, dtype=np.float32,
           fits: Callable[[str], bool] | None = None) -> str:
    """The method ``auto`` runs for ``operation`` on ``spec``: the first of
    :func:`preference` for which ``fits(method)`` holds (the memory limit; ``None``: any), or
    the first of all when none fits (the caller reports what it would need).
    """
    order = preference(operation, spec, dtype)
    first = next(order)
    if fits is None or fits(first):
        return first
    return next((method for method in order if fits(method)), first)


def preference(operation: str, spec: ConvSpec, dtype=np.float32) -> Iterator[str]:
    """Every method of ``operation``, the cost model's choice first (a generator: the others
    are ranked only when asked for).

    ``fast_native`` (the compiled kernels) wherever :func:`native_wins`. Then the forward
    convolution and the weight gradient run ``im2col``, whose single GEMM has inner size
    ``C_in/g * K`` where ``direct``'s ``K`` GEMMs have ``C_in/g``; the transposed convolution:
    integers (no BLAS) ``fast_gemm``, the fewest passes; a gradient with at least twice as
    many cells per sample as channels: ``fast_polyphase_cf`` — its per-sample GEMMs are wide
    enough, and it skips the two layout copies the channels-last methods pay (measured: U-Net,
    long 1-d signals, 3-d, depthwise) — unless its gathers copy more than twice the useful
    ``N*prod(out)*K*C_out`` elements (a kernel much longer than the output: a phase gathers
    about ``(K/stride)**2`` per channel, :func:`.fast_polyphase.gathered`). Otherwise the cheaper
    channels-last method by :func:`estimate`, which counts those gathers. The other fast
    methods follow by their working memory, then the readable ones by theirs (a fallback
    when the limit refuses the fast ones; the scatter, a Python loop per cell, last).
    """
    from . import REGISTRY

    if native_wins(spec, dtype):
        yield "fast_native"
    if operation != "conv_transpose":
        yield from ("im2col", "direct")
        return
    itemsize = np.dtype(dtype).itemsize
    fast = ["fast_gemm", "fast_polyphase", "fast_polyphase_cf"]
    if np.dtype(dtype).kind in "iu":
        first = "fast_gemm"
    elif (math.prod(spec.output_size) >= 2 * spec.out_channels
          and fast_polyphase.gathered(spec) <= 2 * spec.batch * math.prod(spec.output_size)
          * math.prod(spec.kernel_size) * spec.out_channels):
        first = "fast_polyphase_cf"
    else:
        first = min(("fast_gemm", "fast_polyphase"), key=lambda m: estimate(spec, m))
    yield first                          # the rest is sorted only when the first does not fit
    work = {name: method.module.extra_bytes(operation, spec, itemsize)
            for name, method in REGISTRY[operation].items()}
    rest = sorted((m for m in fast if m != first), key=work.__getitem__)
    readable = sorted((m for m in work if m not in fast and m not in ("fast_native", "scatter")),
                      key=work.__getitem__)
    yield from rest + readable + ["scatter"]


def native_wins(spec: ConvSpec, dtype) -> bool:
    """Whether ``auto`` runs the compiled ``fast_native`` on ``spec``, for every operation:
    wherever the extension is built and takes the compute dtype (``fast_native.supports``).

    Measured side by side (docs/performance.md): its blocked kernels run the wide layers at
    the BLAS GEMM's rate and the narrow ones (32 channels, depthwise) far above it, where the
    NumPy methods add gathers, col2im passes and columns around a GEMM; and it allocates at
    most the padded channels-last operands, where the BLAS methods' columns and gathers hold
    1.5-11x the result (``auto``'s memory bar is twice the result).
    """
    return fast_native.supports(spec, np.dtype(compute_dtype(dtype)))


def multiplies(spec: ConvSpec, method: str) -> int:
    """Scalar multiplies a readable method performs, counted from its own loop structure.

    ``zero_insertion`` slides the whole kernel over every output cell of the stretched gradient,
    inserted zeros and padding included; ``polyphase`` runs each phase's sub-kernel over that
    phase's cells only, so it multiplies ``1/prod(stride)`` as much when the kernel size is a
    multiple of the stride (and the output size of the phases is even).
    """
    g = spec.groups
    per_cell = spec.out_channels // g * spec.in_channels  # C_out/g products into each channel
    if method == "zero_insertion":
        return spec.batch * math.prod(spec.input_size) * math.prod(spec.kernel_size) * per_cell
    if method == "polyphase":
        total = 0
        for combo in itertools.product(*(phases(spec, d) for d in range(spec.ndim))):
            cells = math.prod(ph.count for ph in combo)
            taps = math.prod(len(ph.taps) for ph in combo)
            total += spec.batch * cells * taps * per_cell
        return total
    raise ValueError(f"no multiply count for method {method!r}")
