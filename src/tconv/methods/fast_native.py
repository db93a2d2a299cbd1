"""``fast_native``: the three operations as one compiled channels-last kernel (``tconv._native``).

NumPy can run a GEMM, but not the gather before it or the col2im after it inside the same pass;
on narrow layers (32 channels, depthwise) those passes and a GEMM below the BLAS peak cost more
than the multiplies. Here one C kernel reads the operand where it lies and writes each result
element once. In channels-last layout (``(N, *spatial, C)``, channels contiguous) every
operation is the same *affine implicit GEMM*::

    out[cell(m), g, o] = sum_t sum_i in[cell_in(m) + off[t], g, i] * W[g, t, i, o]

over an N-d grid ``m`` (batch first), with ``cell(m)`` and ``cell_in(m)`` affine in ``m``:

* forward convolution: ``m`` = the output cells, ``cell_in(m) = m * stride`` in the padded
  input, ``off[t] = j_t * dilation`` for kernel tap ``j_t``, ``W[g, t, i, o] = w[g*C_out/g + o,
  i, j_t]``;
* transposed convolution: per sub-pixel phase (as in ``polyphase``: the output cells
  ``start + m * stride`` receive only the taps ``j`` with ``j * dilation = r (mod stride)``), a
  stride-1 correlation of the once-padded gradient with the flipped sub-kernel, written straight
  into the phase's strided cells: no gather, no col2im, no zero multiplied;
* weight gradient: the same addressing summed the other way,
  ``dW[g, t, i, o] = sum_m in[cell_in(m) + off[t], g, i] * grad[cell(m), g, o]``.

The forward kernel is blocked as a BLAS GEMM is. The weights are packed in *panels* of one
tile's width of output channels (16-32), 64-byte aligned, rows ``(t, i)`` one after the other.
The cells are taken 96 at a time; for each panel, the rows are taken a K-block of about 128
at a time (whole taps, or a slice of one tap's channels), and a tile of 6 cells x one panel
in vector registers adds the block's products while the block sits in the L1 cache. Between
blocks the tile's sums wait in a small buffer, so every result element is still a plain
running sum of exactly its products in the order tap, channel (the rounding bound of an
n-term sum holds). The sums are written once, straight into the channels-first result.
The weight gradient is the same GEMM over the cells: per block of 192 cells, the gradient's
panels and each tap's input rows are copied into a scratch buffer (rows at a stride that is
not a power of two, so that they do not share a few L1 sets), and a tile of 6 input x 16-32
output channels adds every cell's products into its running sums in ``dW``, a group of taps
(as many as keep their slices of ``dW`` in L2) at a time. Depthwise layers (one channel in
and out per group) run in the caller's channels-first layout without any copy, vectorised
along the last spatial dim (stride 2: an even/odd shuffle of the loads, an interleave of the
stores). Built with generic flags, the module holds AVX-512, AVX2 and baseline kernels and
takes the best the CPU has at import.

Threads: every pass (the channels-last copy in, done as in-register transposes of 16x16 tiles,
and the kernel) runs over grid rows, two halves in :func:`tconv._threads.pool`'s two threads
on large arrays; the weight gradient gives each thread half of the taps (with groups: half of
the rows and an accumulator each, added).

Extra memory: the padded channels-last operand and one phase's weight panels (transposed
convolution), the padded channels-last input and the panels (forward), the padded input, the
channels-last gradient and the accumulator (weight gradient; and a scratch buffer of 192 cells
per thread); nothing for depthwise layers.

The extension is optional: when it did not build (no C compiler), :data:`AVAILABLE` is False,
the method is not registered and ``auto`` runs the NumPy methods. Dtypes the kernels do not
take (``longdouble``) and specs of more than 15 spatial dims run ``fast_gemm`` (transposed) or
``im2col`` (forward, weight gradient) instead.
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np

from .._threads import pool
from ..spec import ConvSpec
from . import fast_gemm, im2col
from .fast_polyphase import padded_once, padded_size, sub_kernel_matrix
from .polyphase import empty, largest, phases

try:
    from .. import _native
except ImportError:           # built without a C compiler: the NumPy methods serve
    _native = None

#: Whether the compiled kernels are there (``auto`` falls back to NumPy methods without them).
AVAILABLE = _native is not None


class _CKernels:
    """The calls into ``tconv._native``: arrays in, raw addresses out. (The same three
    functions over arrays can stand in for it: ``benchmarks/compiled_options.py`` puts a Numba
    port of the kernels there, with these drivers unchanged.)"""

    @staticmethod
    def run(kind, src, dst, dst_offset, weights, params):
        _native.run(kind, _CODE[dst.dtype], src.ctypes.data,
                    dst.ctypes.data + dst_offset * dst.itemsize, weights.ctypes.data,
                    params.ctypes.data)

    @staticmethod
    def tile_width(code):
        return _native.tile_width(code)

    @staticmethod
    def copy(src, dst, dst_offset, params):
        _native.copy(src.itemsize, src.ctypes.data, dst.ctypes.data + dst_offset * dst.itemsize,
                     params.ctypes.data)

    @staticmethod
    def depthwise(kind, x, y, out, weights, params):
        _native.depthwise(kind, _CODE[out.dtype], 0 if x is None else x.ctypes.data,
                          y.ctypes.data, out.ctypes.data, weights.ctypes.data,
                          params.ctypes.data)


#: The kernels the drivers below call.
KERNELS = _CKernels

#: When a dict, the drivers add the seconds of their passes to it: ``"layout"`` (the
#: channels-last copies in and out, weight packing) and ``"kernel"`` (the compiled kernel);
#: ``tconv bench`` reads it to say what bounds a layer.
PROFILE: dict | None = None


class _timed:
    """Adds the seconds of its block to ``PROFILE[part]``; a block inside another of the same
    part (a layout copy inside the weight packing) is not counted twice."""

    _open: set = set()

    def __init__(self, part: str):
        self.part = part

    def __enter__(self):
        self.outer = PROFILE is not None and self.part not in _timed._open
        if self.outer:
            _timed._open.add(self.part)
            self.start = time.perf_counter()

    def __exit__(self, *exc):
        if self.outer:
            _timed._open.discard(self.part)
            if PROFILE is not None:
                PROFILE[self.part] = (PROFILE.get(self.part, 0.0) + time.perf_counter()
                                      - self.start)


_CODE = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.int64): 2}
_DENSE, _DEPTHWISE, _DENSE_WGRAD, _DEPTHWISE_WGRAD = range(4)

#: Grid dims the kernels take (batch + spatial); specs with more spatial dims are refused.
MAX_GRID_DIMS = 16

#: Arrays smaller than this (elements) run in the calling thread (threads cost more).
_THREADED_SIZE = 1 << 16


def supports(spec: ConvSpec, dtype) -> bool:
    """Whether this method can run ``spec`` in compute dtype ``dtype``: the extension is built,
    the dtype is float32, float64 or int64, and the spec has at most 15 spatial dims."""
    return (AVAILABLE and np.dtype(dtype) in _CODE
            and spec.ndim + 1 <= MAX_GRID_DIMS)


def is_depthwise(spec: ConvSpec) -> bool:
    """One channel in and one out per group: the kernel vectorises over the channels."""
    return spec.in_channels == spec.out_channels == spec.groups


def channels_first_depthwise(spec: ConvSpec) -> bool:
    """Depthwise layers run in the caller's channels-first layout, without copies (the last
    dim's stride and kernel size at most 64, the kernels' bound)."""
    return is_depthwise(spec) and spec.stride[-1] <= 64 and spec.kernel_size[-1] <= 64


def sums_every_product(operation: str, spec: ConvSpec, dtype) -> bool:
    """Whether the kernels multiply every product of ``operation``'s definition on ``spec``
    (they may multiply padding zeros besides), so that a finite result proves every product
    finite and :func:`tconv.ops.run` need not scan the operands for NaN and infinities first.

    True for the transposed convolution (the phases' border taps only add products of the
    gradient's padding zeros) and for the forward convolution and the weight gradient on the
    padded channels-last input (the definition multiplies the padding zeros too). Not where
    the channels-first depthwise kernels skip the padding of a padded forward layer, and not
    where another method runs for a dtype the kernels do not take."""
    if not supports(spec, dtype):
        return False
    if operation == "conv_transpose" or not channels_first_depthwise(spec):
        return True
    return not any(lo or hi for lo, hi in spec.padding)


def all_finite(a: np.ndarray) -> bool | None:
    """Whether the float32 or float64 array ``a`` holds no NaN or infinity, by the compiled
    scan of its bits (one pass, in the calling thread: two halves in two threads measured
    slower at every size from 64 Ki to 4 Mi elements, 30 against 2.4 us and 384 against 211);
    None where the scan does not apply (no extension, another dtype, not C-contiguous)."""
    if not AVAILABLE or a.dtype not in _FLOATS or not a.flags.c_contiguous:
        return None
    return _native.finite(a.itemsize, a.ctypes.data, a.size)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def instruction_set() -> str | None:
    """The instruction set the kernels run here (``avx512``, ``avx2``, ``base``), or None."""
    return _native.isa()[0] if AVAILABLE else None


# -- threads over grid rows ---------------------------------------------------------------------

def _halves(rows: int, threaded: bool) -> list[tuple[int, int]]:
    if not threaded or rows < 2:
        return [(0, rows)]
    return [(0, rows // 2), (rows // 2, rows)]


def _run_parts(parts: list, part: str = "kernel") -> None:
    """Run the callables of ``parts`` (one per half), in the pool when there are two."""
    with _timed(part):
        _run_halves(parts)


def _run_halves(parts: list) -> None:
    if len(parts) == 1:
        parts[0]()
    else:
        list(pool().map(lambda f: f(), parts))


# -- layout copies ------------------------------------------------------------------------------

def _steps(shape) -> list[int]:
    """C-order element steps of ``shape``."""
    steps, acc = [], 1
    for n in reversed(shape):
        steps.append(acc)
        acc *= n
    return steps[::-1]


def _merge(grid, *steps_list):
    """Merge neighbouring grid dims that both sides step through as one (``step[d] ==
    count[d+1] * step[d+1]``), so that the innermost run is as long as possible."""
    grid, steps_list = list(grid), [list(s) for s in steps_list]
    d = len(grid) - 2
    while d >= 1:          # the batch (dim 0) stays apart: its rows split the work in two
        if all(s[d] == grid[d + 1] * s[d + 1] for s in steps_list):
            grid[d:d + 2] = [grid[d] * grid[d + 1]]
            for s in steps_list:
                s[d:d + 2] = [s[d + 1]]
        d -= 1
    return grid, steps_list


def _copy(src: np.ndarray, src_steps, dst: np.ndarray, dst_offset: int, dst_steps, grid,
          channels: int, s_c: int, d_c: int) -> None:
    """``dst[offset + cell . dst_steps + c*d_c] = src[cell . src_steps + c*s_c]`` for every cell
    of ``grid`` and channel ``c``; two halves (of the rows, or of the channels when there is one
    row) in two threads when large."""
    if channels == 0 or math.prod(grid) == 0:
        return
    grid, (src_steps, dst_steps) = _merge(grid, src_steps, dst_steps)
    item = src.itemsize
    rows = math.prod(grid[:-1])

    def part(r0: int, r1: int, c0: int, c1: int):
        params = np.array([len(grid), r0, r1, c0, c1, s_c, d_c, *grid, *src_steps,
                           *dst_steps], dtype=np.int64)
        return lambda: KERNELS.copy(src, dst, dst_offset, params)

    threaded = math.prod(grid) * channels >= _THREADED_SIZE
    if threaded and rows < 2 and channels >= 2:
        line = 64 // item
        half = max(line, channels // 2 // line * line)
        _run_parts([part(0, rows, 0, half), part(0, rows, half, channels)]
                   if half < channels else [part(0, rows, 0, channels)], "layout")
    else:
        _run_parts([part(a, b, 0, channels) for a, b in _halves(rows, threaded)], "layout")


def channels_last(a: np.ndarray, pads, tail: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """``a`` ``(N, C, *size)`` as a zero-padded channels-last buffer ``(N, *padded, C)``
    (flat, with ``tail`` zeros after it so that vector loads past the last channel stay in
    it), and its shape. ``pads`` are ``(low, high)`` per spatial dim; negative ones crop."""
    n, c = a.shape[:2]
    size = a.shape[2:]
    padded = tuple(m + lo + hi for m, (lo, hi) in zip(size, pads))
    shape = (n,) + padded + (c,)
    buf = np.zeros(math.prod(shape) + tail, dtype=a.dtype)
    a = np.ascontiguousarray(a)
    src_first = [max(-lo, 0) for lo, _ in pads]
    grid = (n,) + tuple(m - f - max(-hi, 0) for m, f, (_, hi) in zip(size, src_first, pads))
    if min(grid) <= 0:
        return buf, shape
    s_steps, d_steps = _steps(a.shape), _steps(shape)
    src_offset = sum(f * s for f, s in zip(src_first, s_steps[2:]))
    dst_offset = sum(max(lo, 0) * s for (lo, _), s in zip(pads, d_steps[1:-1]))
    _copy(a[(slice(None),) * 2 + tuple(slice(f, None) for f in src_first)]
          if src_offset else a, [s_steps[0]] + s_steps[2:], buf, dst_offset,
          d_steps[:-1], grid, c, s_steps[1], 1)
    return buf, shape


#: Bytes of channels-last operand copies a driver holds at once: the batch is taken in runs of
#: samples under it (one sample at least). Copies that small come back warm from the
#: allocator's free lists, where a fresh copy of a large batch is mapped and faulted in page by
#: page (on the bench machine, with NumPy's huge-page hint for arrays of 4 MiB and more, about
#: 1 ms per MiB), and the kernel reads each copy while it is still in cache.
CHUNK_BYTES = 8 << 20


def _chunk_samples(n: int, sample_bytes: int, rows: int = 2) -> int:
    """Samples per run of the batch (see :data:`CHUNK_BYTES`): at least enough for two grid
    rows (``rows`` per sample), the two threads' halves (a 1-d signal is one row)."""
    return min(n, max(1, CHUNK_BYTES // max(1, sample_bytes), -(-2 // max(1, rows))))


def _sample_copy(operation: str, spec: ConvSpec) -> tuple[int, int]:
    """``(elements, grid rows)`` of one sample in the channels-last copies a driver makes: the
    padded gradient (the transposed convolution; its rows: the fewest a phase has), the padded
    input (forward), the padded input and the gradient (weight gradient)."""
    if operation == "conv_transpose":
        rows = math.prod(min([ph.count for ph in phases(spec, dim) if ph.count] or [1])
                         for dim in range(spec.ndim - 1))
        return spec.out_channels * padded_size(spec), rows
    x = spec.in_channels * math.prod(spec.padded_input_size)
    g = spec.out_channels * math.prod(spec.output_size) if operation == "weight_grad" else 0
    return x + g, math.prod(spec.output_size[:-1])


def _runs(operation: str, spec: ConvSpec, itemsize: int) -> list[tuple[int, int]]:
    """The runs of samples of ``operation``'s driver (:func:`_chunks` of its copies)."""
    elements, rows = _sample_copy(operation, spec)
    return _chunks(spec.batch, elements * itemsize, rows)


def _splits_taps(spec: ConvSpec) -> bool:
    """Whether the weight gradient's two threads take half of the taps each (into one
    accumulator); else half of the rows each, an accumulator per half (with groups)."""
    return (spec.groups == 1 or is_depthwise(spec)) and math.prod(spec.kernel_size) >= 2


def _chunks(n: int, sample_bytes: int, rows: int = 2) -> list[tuple[int, int]]:
    """The batch ``[0, n)`` in as few runs as :func:`_chunk_samples` allows, of equal size."""
    count = -(-n // _chunk_samples(n, sample_bytes, rows))
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


# -- the kernel ---------------------------------------------------------------------------------

def _kernel_parts(kind: int, src: np.ndarray, dst: np.ndarray, dst_offset: int,
                  weights: np.ndarray, offsets, grid, istep, ostep, groups: int, kin: int,
                  kout: int, kpad: int, ocs: int, threaded: bool) -> list:
    """One callable per half of the grid rows running kernel ``kind`` (``ocs``: the element
    step between output channels, 1 for a channels-last output)."""
    rows = math.prod(grid[:-1])
    parts = []
    for r0, r1 in _halves(rows, threaded):
        params = np.array([len(offsets), len(grid), r0, r1, groups, kin, kout, kpad, ocs,
                           *grid, *istep, *ostep, *offsets], dtype=np.int64)
        parts.append(lambda params=params: KERNELS.run(kind, src, dst, dst_offset, weights,
                                                       params))
    return parts


def _pad_last(a: np.ndarray, width: int) -> np.ndarray:
    """``a`` with its last axis zero-padded to a multiple of ``width``, C-contiguous."""
    last = a.shape[-1]
    padded = -(-last // width) * width
    if padded == last:
        return np.ascontiguousarray(a)
    out = np.zeros(a.shape[:-1] + (max(padded, width),), dtype=a.dtype)
    out[..., :last] = a
    return out


def _aligned_zeros(shape, dtype) -> np.ndarray:
    """Zeros of ``shape``, the first element on a 64-byte boundary (the kernels' vector loads)."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    raw = np.zeros(size + 64 // dtype.itemsize, dtype=dtype)
    skip = (-raw.ctypes.data % 64) // dtype.itemsize
    return raw[skip:skip + size].reshape(shape)


def _weight_panels(w: np.ndarray, taps, groups: int, width: int, transposed: bool,
                   dtype) -> np.ndarray:
    """The dense kernel's weights: panels of ``width`` output channels, ``(g, ceil(kout /
    width), T, kin, width)``, zero-padded, where row ``(t, i)`` of the panel of output channels
    ``o`` holds ``W[g, t, i, o]`` (see the module docstring):

    * forward (``w`` ``(C_out, C_in/g, *k)``, every tap): ``W[g, t, i, o] = w[g*kout + o, i, t]``;
    * transposed (``w`` ``(C_y, C_x/g, *k)``, one phase's taps, flipped: sub-kernel tap 0 is the
      phase's last kernel tap): ``W[g, t, i, o] = w[g*kin + i, o, taps reversed][t]``.

    ``taps`` holds the kernel indices per dim, evenly spaced (a phase's). One strided copy by
    the compiled layout copier: each element of ``w`` is read where it lies, so that a phase
    does not first gather its sub-kernel."""
    w = np.ascontiguousarray(w, dtype=dtype)
    ws = _steps(w.shape)
    if transposed:
        kin, kout = w.shape[0] // groups, w.shape[1]
        row, col, group = ws[0], ws[1], kin * ws[0]
    else:
        kout, kin = w.shape[0] // groups, w.shape[1]
        row, col, group = ws[1], ws[0], kout * ws[0]
    counts = [len(tp) for tp in taps]
    full, rest = divmod(kout, width)
    out = _aligned_zeros((groups, max(1, full + (rest > 0)), math.prod(counts), kin, width),
                         w.dtype)
    sign = -1 if transposed else 1
    first = w[(slice(None),) * 2 + tuple(slice(tp[-1] if transposed else tp[0], None)
                                        for tp in taps)]
    tap_steps = [sign * (tp[1] - tp[0]) * st if len(tp) > 1 else 0
                 for tp, st in zip(taps, ws[2:])]
    g_step, b_step, *t_steps, i_step = _steps((groups, out.shape[1], *counts, kin, width))[:-1]
    if transposed:    # the grid (g, panel, *taps, i)
        src_steps = [group, width * col, *tap_steps, row]
        dst_steps = [g_step, b_step, *t_steps, i_step]
        grid = [groups, 1, *counts, kin]
    else:             # (g, panel, i, *taps): every tap, contiguous in w: copied by vectors
        src_steps = [group, width * col, row, *tap_steps]
        dst_steps = [g_step, b_step, i_step, *t_steps]
        grid = [groups, 1, kin, *counts]
    if full:
        _copy(first, src_steps, out, 0, dst_steps, grid[:1] + [full] + grid[2:], width, col, 1)
    if rest:         # the last panel, from output channel full * width on
        last = first[:, full * width:] if transposed else first[full * width:]
        _copy(last, src_steps, out, full * b_step, dst_steps, grid, rest, col, 1)
    return out


def _kpad(weights: np.ndarray, depthwise: bool) -> int:
    """The padded output channels of packed weights: ``(T, kpad)`` depthwise, else panels."""
    return weights.shape[-1] if depthwise else weights.shape[1] * weights.shape[-1]


_DW_CONV, _DW_TRANSPOSE, _DW_WGRAD = range(3)

#: Per operation: the method that runs what the kernels do not take, the spec's attributes of
#: the result's shape and of the spatial size the kernels' grid runs over, the depthwise kernel.
_OPERATIONS = {
    "conv_transpose": (fast_gemm.conv_transpose, "input_shape", "input_size", _DW_TRANSPOSE),
    "conv": (im2col.conv, "output_shape", "output_size", _DW_CONV),
    "weight_grad": (im2col.weight_grad, "weight_shape", "output_size", _DW_WGRAD),
}


def _untiled(op: str, a: np.ndarray, b: np.ndarray, spec: ConvSpec):
    """``(dtype, result)`` of operation ``op`` on its arrays ``a``, ``b`` where the channels-last
    kernels do not run, result None where they do: the fallback method for a dtype or a rank
    they do not take (long double, more than 15 dims), zeros without a sample or a cell, and
    depthwise layers through the channels-first kernels."""
    fallback, shape, size, kind = _OPERATIONS[op]
    dtype = np.result_type(a, b)
    if not supports(spec, dtype):
        return dtype, fallback(a, b, spec)
    if spec.batch == 0 or 0 in getattr(spec, size):
        return dtype, np.zeros(getattr(spec, shape), dtype=dtype)
    if channels_first_depthwise(spec):
        out = np.empty(getattr(spec, shape), dtype=dtype)
        _depthwise(kind, spec, a, b, out)
        return dtype, out
    return dtype, None


def _depthwise(kind: int, spec: ConvSpec, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """One channels-first depthwise kernel from the operation's arrays ``a``, ``b`` into ``out``,
    over its rows (two halves in threads when large): the lines along the last dim of the
    output (conv) or the input (transposed) per sample and channel, the weight gradient's
    channels."""
    x, y, w = {_DW_CONV: (a, out, b), _DW_TRANSPOSE: (None, a, b), _DW_WGRAD: (a, b, out)}[kind]
    lines = spec.input_size if kind == _DW_TRANSPOSE else spec.output_size
    rows = (spec.in_channels if kind == _DW_WGRAD
            else spec.batch * spec.in_channels * math.prod(lines[:-1]))
    w = np.ascontiguousarray(w.reshape(spec.in_channels, -1))
    x = x if x is None else np.ascontiguousarray(x)
    y = np.ascontiguousarray(y)
    geometry = [*spec.input_size, *spec.output_size, *spec.kernel_size, *spec.stride,
                *spec.dilation, *(lo for lo, _ in spec.padding)]
    big = max(out.size, y.size, 0 if x is None else x.size) >= _THREADED_SIZE

    def part(r0: int, r1: int):
        params = np.array([spec.ndim, spec.batch, spec.in_channels, r0, r1, *geometry],
                          dtype=np.int64)
        return lambda: KERNELS.depthwise(kind, x, y, out, w, params)

    _run_parts([part(a, b) for a, b in _halves(rows, big)])


def conv_transpose(y: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The transposed convolution: per run of samples (:data:`CHUNK_BYTES`) and sub-pixel
    phase, the kernel over the phase's cells, written straight into the channels-first
    result."""
    dtype, x = _untiled("conv_transpose", y, w, spec)
    if x is not None:
        return x
    g = spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    width = KERNELS.tile_width(_CODE[dtype])
    depthwise = is_depthwise(spec)
    per_dim = [phases(spec, dim) for dim in range(spec.ndim)]
    # the phases a tap reaches; where they leave cells of x out, those cells are 0
    covered = all(sum(ph.count for ph in dim) == n_x for dim, n_x in zip(per_dim, spec.input_size))
    x = (np.empty if covered else np.zeros)(spec.input_shape, dtype=dtype)
    most = padded_once(per_dim)
    xsteps = _steps(spec.input_shape)
    for s0, s1 in _runs("conv_transpose", spec, x.itemsize):
        yp, yshape = channels_last(y[s0:s1], most, tail=width)
        ysteps = _steps(yshape)
        threaded = (s1 - s0) * xsteps[0] >= _THREADED_SIZE
        for combo in itertools.product(*per_dim):
            if empty(combo):
                continue
            counts = tuple(ph.count for ph in combo)
            taps = [ph.taps for ph in combo]
            starts = [lo - ph.pad[0] for (lo, _), ph in zip(most, combo)]
            with _timed("layout"):
                offsets = [sum((b + t * ph.dilation) * st for b, t, ph, st in
                               zip(starts, shift, combo, ysteps[1:-1]))
                           for shift in itertools.product(*[range(len(t)) for t in taps])]
                weights = (_pad_last(sub_kernel_matrix(w, taps, g).reshape(g, -1).T, width)
                           if depthwise else _weight_panels(w, taps, g, width, True, dtype))
            out_offset = s0 * xsteps[0] + sum(ph.start * st for ph, st in zip(combo, xsteps[2:]))
            ostep = [xsteps[0]] + _strided(spec.stride, xsteps[2:], counts)
            _run_parts(_kernel_parts(_DEPTHWISE if depthwise else _DENSE, yp, x, out_offset,
                                     weights, offsets, (s1 - s0,) + counts,
                                     [ysteps[0]] + ysteps[1:-1], ostep, g, co, ci,
                                     _kpad(weights, depthwise), xsteps[1], threaded))
            del weights                   # one phase's packed weights at a time
        del yp
    return x


def _strided(stride, steps, counts) -> list[int]:
    """The element step between a grid's cells along each dim, ``stride * step``; 0 where the
    grid has one cell (a stride there is never taken, and may not fit the kernels' int64)."""
    return [s * st if c > 1 else 0 for s, st, c in zip(stride, steps, counts)]


def _forward_layout(spec: ConvSpec, xshape):
    """Grid, input steps and tap offsets of the forward convolution on the padded input."""
    xsteps = _steps(xshape)
    grid = (xshape[0],) + spec.output_size
    istep = [xsteps[0]] + _strided(spec.stride, xsteps[1:-1], spec.output_size)
    offsets = [sum(j * d * st for j, d, st in zip(tap, spec.dilation, xsteps[1:-1]))
               for tap in itertools.product(*map(range, spec.kernel_size))]
    return grid, istep, offsets


def conv(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The forward convolution: per run of samples (:data:`CHUNK_BYTES`), the kernel over the
    output cells of their padded channels-last input, written straight into the channels-first
    result."""
    dtype, y = _untiled("conv", x, w, spec)
    if y is not None:
        return y
    g = spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    y = np.empty(spec.output_shape, dtype=dtype)
    width = KERNELS.tile_width(_CODE[dtype])
    k = math.prod(spec.kernel_size)
    depthwise = is_depthwise(spec)
    with _timed("layout"):
        if depthwise:
            weights = _pad_last(w.reshape(g, k).T, width)                             # (K, g)
        else:
            weights = _weight_panels(w, [range(n) for n in spec.kernel_size], g, width, False,
                                     dtype)
    ysteps = _steps(spec.output_shape)
    for s0, s1 in _runs("conv", spec, y.itemsize):
        xp, xshape = channels_last(x[s0:s1], spec.padding, tail=width)
        grid, istep, offsets = _forward_layout(spec, xshape)
        _run_parts(_kernel_parts(_DEPTHWISE if depthwise else _DENSE, xp, y, s0 * ysteps[0],
                                 weights, offsets, grid, istep, [ysteps[0]] + ysteps[2:], g, ci,
                                 co, _kpad(weights, depthwise), ysteps[1],
                                 (s1 - s0) * ysteps[0] >= _THREADED_SIZE))
        del xp
    return y


def weight_grad(x: np.ndarray, grad: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The weight gradient: the kernel's addressing, each tap's products summed over the cells,
    a run of samples (:data:`CHUNK_BYTES`) at a time into the same sums. Two threads take half
    of the taps each (one accumulator); with groups, half of the rows each (an accumulator
    each, added)."""
    dtype, dw = _untiled("weight_grad", x, grad, spec)
    if dw is not None:
        return dw
    g = spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    width = KERNELS.tile_width(_CODE[dtype])
    k = math.prod(spec.kernel_size)
    depthwise = is_depthwise(spec)
    kind = _DEPTHWISE_WGRAD if depthwise else _DENSE_WGRAD
    kpad = -(-(g if depthwise else co) // width) * width
    acc_shape = (k, kpad) if depthwise else (g, k, ci, kpad)
    per_tap = math.prod(acc_shape[-2:]) if not depthwise else kpad
    split_taps = _splits_taps(spec)
    accs: list[np.ndarray] = []
    for s0, s1 in _runs("weight_grad", spec, np.dtype(dtype).itemsize):
        xp, xshape = channels_last(x[s0:s1], spec.padding, tail=width)
        gl, gshape = channels_last(grad[s0:s1], [(0, 0)] * spec.ndim, tail=width)
        grid, istep, offsets = _forward_layout(spec, xshape)
        threaded = xp.size >= _THREADED_SIZE
        ostep = _steps(gshape)[:-1]
        rows = math.prod(grid[:-1])
        parts = []
        if split_taps:
            # split the taps: both threads read every row, each into its own taps' sums
            if not accs:
                accs.append(np.zeros(acc_shape, dtype=dtype))
            for t0, t1 in [(0, k // 2), (k // 2, k)] if threaded else [(0, k)]:
                params = np.array([t1 - t0, len(grid), 0, rows, g, ci, co, kpad, 1, *grid,
                                   *istep, *ostep, *offsets[t0:t1]], dtype=np.int64)
                parts.append(lambda params=params, t0=t0, xp=xp, gl=gl: KERNELS.run(
                    kind, xp, accs[0], t0 * per_tap, gl, params))
        else:
            # split the rows: an accumulator per half (both are kept across the runs)
            halves = _halves(rows, threaded)
            while len(accs) < len(halves):
                accs.append(np.zeros(acc_shape, dtype=dtype))
            for (r0, r1), a in zip(halves, accs):
                params = np.array([k, len(grid), r0, r1, g, ci, co, kpad, 1, *grid, *istep,
                                   *ostep, *offsets], dtype=np.int64)
                parts.append(lambda params=params, a=a, xp=xp, gl=gl: KERNELS.run(
                    kind, xp, a, 0, gl, params))
        _run_parts(parts)
        del xp, gl, parts
    acc = accs[0] if len(accs) == 1 else accs[0] + accs[1]
    if depthwise:
        return np.ascontiguousarray(acc[:, :g].T).reshape(spec.weight_shape)
    # dw[g*co + o, i, t] = acc[g, t, i, o]: per (g, i), a transpose of (t, o) blocks
    dw = np.empty(spec.weight_shape, dtype=dtype)
    a_g, a_t, a_i = _steps(acc_shape)[:3]
    with _timed("layout"):
        _copy(acc, [a_g, a_i, a_t], dw, 0, [co * ci * k, k, 1], [g, ci, k], co, 1, ci * k)
    return dw


#: Bytes of a Python int in a kernel's list of tap offsets, and of its parameter array.
OFFSET_BYTES = 64


def extra_bytes(operation: str, spec: ConvSpec, itemsize: int) -> int:
    """Bytes held at the peak beyond the operands and the result (the module docstring's
    list): one run of samples' padded channels-last operand(s) with their vector tail
    (:data:`CHUNK_BYTES`), the packed weights (the
    transposed convolution: one phase's), the weight gradient's accumulators (two when two
    threads split the rows, and at the end their sum, when the copies are gone) and scratch
    blocks, the tap offsets. Channels-first depthwise layers copy nothing; what the kernels do
    not take runs ``fast_gemm`` or ``im2col``, and is counted as theirs."""
    if itemsize not in (4, 8) or spec.ndim + 1 > MAX_GRID_DIMS:
        fallback = fast_gemm if operation == "conv_transpose" else im2col
        return fallback.extra_bytes(operation, spec, itemsize)
    if spec.batch == 0 or channels_first_depthwise(spec):
        return 0
    g = spec.groups
    co, ci = spec.out_channels // g, spec.in_channels // g
    width = KERNELS.tile_width(_CODE[np.dtype(np.float32 if itemsize == 4 else np.float64)])
    elements, rows = _sample_copy(operation, spec)
    copies = _chunk_samples(spec.batch, elements * itemsize, rows) * elements + 2 * width
    if operation == "conv_transpose":          # one run's padded gradient, one phase's panels
        taps = largest(spec)[0]
        if is_depthwise(spec):        # the phase's sub-kernel, then packed
            packed = g * taps + taps * (g + width)
        else:                         # the panels, copied straight from w; 64-byte alignment
            packed = g * taps * co * (ci + width) + 64 // itemsize
        return itemsize * (copies + packed) + OFFSET_BYTES * taps
    k = math.prod(spec.kernel_size)
    if operation == "conv":                    # one run's padded input, the panels
        return itemsize * (copies + g * k * ci * (co + width)) + OFFSET_BYTES * k
    depthwise = is_depthwise(spec)
    acc = k * (g + width) if depthwise else g * k * ci * (co + width)
    # the compiled kernel's scratch block per thread (allocated in C, counted by C)
    scratch = 0 if depthwise else 2 * _native.wgrad_scratch(itemsize, ci, -(-co // width) * width)
    split_taps = _splits_taps(spec)                       # one accumulator, else one per half
    during = itemsize * (copies + (1 if split_taps else 2) * acc) + scratch
    after = itemsize * (acc if split_taps else 3 * acc)   # the two halves and their sum
    return max(during, after) + OFFSET_BYTES * k
