"""The compiled-path options of docs/performance.md, measured against each other on the layers.

    python benchmarks/compiled_options.py --layer 3-d --repeats 7

Three ways to run what NumPy cannot fuse, each timed on the same data and interleaved in rounds
(only the ratios of one run mean anything), beside PyTorch's function for the operation:

* ``c``: ``fast_native`` as shipped, the C extension ``tconv._native``; ``c 1 thread`` the
  same with every pass (copies and kernels) in one thread, to measure what the second pays;
* ``numba``: the same drivers (``tconv.methods.fast_native``) with the C kernels replaced by
  a Numba port of the same loops (``@njit(nogil=True)``, fastmath off, the same two threads of
  the drivers), so that only the compiler differs. Numba has no vector types: its kernels are
  plain loops over the channels that LLVM vectorises or not, where the C kernels keep an
  explicit register tile of 64-byte vectors. Needs ``pip install numba`` (not a tconv
  dependency; 0.68.1 imports with NumPy 2.4.6);
* ``blas``: SciPy's BLAS (``scipy.linalg.blas.sgemm``/``dgemm``) with in-place accumulation
  (``beta=1``, ``overwrite_c``): per tap, one GEMM of the shifted, once-padded channels-last
  operand into the result over the whole padded grid (no gather: the border cells are computed
  and dropped), then one strided copy of the valid cells and the layout copy back. The forward
  convolution and the weight gradient first split the padded input into its ``prod(stride)``
  phases (space-to-depth) so that every tap is a shift. Depthwise layers have no GEMM to give
  BLAS (``C`` GEMMs of one channel each): not timed.

Prints one line per operation: median ms of each candidate and its ratio to PyTorch's.
"""
from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
from scipy.linalg import blas

from tconv import bench
from tconv.methods import fast_native
from tconv.methods.fast_polyphase import padded_once, sub_kernel_matrix
from tconv.methods.polyphase import phases
from tconv.ops import convolve, transpose, weight_grad


# -- the Numba port of the kernels of tconv/_native.c -------------------------------------------

def numba_kernels():
    """A stand-in for ``fast_native.KERNELS`` whose kernels are Numba functions, or None."""
    try:
        import numba
    except ImportError:
        return None
    jit = numba.njit(nogil=True, fastmath=False, cache=False)
    MB = 6

    @jit
    def row_base(r, nd, count, istep, ostep):
        a = 0
        b = 0
        for d in range(nd - 2, -1, -1):
            q = r % count[d]
            r //= count[d]
            a += q * istep[d]
            b += q * ostep[d]
        return a, b

    @jit
    def run(kind, inp, out, out0, w, p):
        taps, nd, row0, row1 = p[0], p[1], p[2], p[3]
        groups, kin, kout, kpad, ocs = p[4], p[5], p[6], p[7], p[8]
        count, istep, ostep = p[9:9 + nd], p[9 + nd:9 + 2 * nd], p[9 + 2 * nd:9 + 3 * nd]
        off = p[9 + 3 * nd:9 + 3 * nd + taps]
        L, il, ol = count[nd - 1], istep[nd - 1], ostep[nd - 1]
        width = 16 if out.dtype == np.float32 else 8      # NumbaKernels.tile_width
        acc = np.zeros((MB, kpad), dtype=out.dtype)
        if kind == 0 or kind == 1:                   # forward: a tile of MB cells
            ch = groups if kind == 1 else kout
            for r in range(row0, row1):
                ib, ob = row_base(r, nd, count, istep, ostep)
                for g in range(1 if kind == 1 else groups):
                    for m0 in range(0, L, MB):
                        mb = min(MB, L - m0)
                        acc[:, :] = 0
                        for t in range(taps):
                            if kind == 1:
                                for a in range(mb):
                                    base = ib + (m0 + a) * il + off[t]
                                    for o in range(ch):
                                        acc[a, o] += inp[base + o] * w[t * kpad + o]
                            else:
                                for i in range(kin):
                                    for a in range(mb):
                                        x = inp[ib + (m0 + a) * il + off[t] + g * kin + i]
                                        for o in range(kout):   # panels (g, b, t, i, width)
                                            b, c = o // width, o % width
                                            acc[a, o] += x * w[((((g * (kpad // width) + b)
                                                                  * taps + t) * kin + i)
                                                                 * width + c)]
                        for a in range(mb):
                            o0 = out0 + ob + (m0 + a) * ol + (0 if kind == 1 else g * kout) * ocs
                            for o in range(ch):
                                out[o0 + o * ocs] = acc[a, o]
            return
        for r in range(row0, row1):                  # weight gradient
            ib, ob = row_base(r, nd, count, istep, ostep)
            for m in range(L):
                if kind == 3:
                    for t in range(taps):
                        base = ib + m * il + off[t]
                        for c in range(groups):
                            out[out0 + t * kpad + c] += inp[base + c] * w[ob + m * ol + c]
                    continue
                for g in range(groups):
                    gb = ob + m * ol + g * kout
                    for t in range(taps):
                        base = ib + m * il + off[t] + g * kin
                        for i in range(kin):
                            x = inp[base + i]
                            d0 = out0 + ((g * taps + t) * kin + i) * kpad
                            for o in range(kout):
                                out[d0 + o] += x * w[gb + o]

    @jit
    def copy(src, dst, dst0, p):
        nd, row0, row1, c0, c1, s_c, d_c = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
        count, s_step, d_step = p[7:7 + nd], p[7 + nd:7 + 2 * nd], p[7 + 2 * nd:7 + 3 * nd]
        L, sl, dl = count[nd - 1], s_step[nd - 1], d_step[nd - 1]
        for r in range(row0, row1):
            sb, db = row_base(r, nd, count, s_step, d_step)
            for m0 in range(0, L, 16):
                for ch in range(c0, c1):
                    for m in range(m0, min(m0 + 16, L)):
                        dst[dst0 + db + m * dl + ch * d_c] = src[sb + m * sl + ch * s_c]

    @jit
    def depthwise(kind, x, y, out, w, p):
        nd, channels, row0, row1 = p[0], p[2], p[3], p[4]
        q = p[5:]
        size_in, size_out = q[0:nd], q[nd:2 * nd]
        k, s, dil, lo = q[2 * nd:3 * nd], q[3 * nd:4 * nd], q[4 * nd:5 * nd], q[5 * nd:6 * nd]
        taps = 1
        for d in range(nd):
            taps *= k[d]
        in_plane = 1
        out_plane = 1
        for d in range(nd):
            in_plane *= size_in[d]
            out_plane *= size_out[d]
        jj = np.zeros(nd, np.int64)
        pos = np.zeros(nd, np.int64)
        if kind == 2:                               # weight gradient: channels row0..row1
            for c in range(row0, row1):
                for t in range(taps):
                    out[c * taps + t] = 0
            for n in range(p[1]):
                for c in range(row0, row1):
                    plane = n * channels + c
                    for cell in range(out_plane):
                        rem = cell
                        for d in range(nd - 1, -1, -1):
                            pos[d] = rem % size_out[d]
                            rem //= size_out[d]
                        gv = y[plane * out_plane + cell]
                        for t in range(taps):
                            rem = t
                            flat = 0
                            ok = True
                            for d in range(nd - 1, -1, -1):
                                jj[d] = rem % k[d]
                                rem //= k[d]
                            for d in range(nd):
                                i = pos[d] * s[d] + jj[d] * dil[d] - lo[d]
                                ok = ok and 0 <= i < size_in[d]
                                flat = flat * size_in[d] + i
                            if ok:
                                out[c * taps + t] += x[plane * in_plane + flat] * gv
            return
        sizes = size_out if kind == 0 else size_in
        plane_cells = out_plane if kind == 0 else in_plane
        last = sizes[nd - 1]
        for r in range(row0, row1):
            plane = r // (plane_cells // last)
            start = (r % (plane_cells // last)) * last
            c = plane % channels
            for cell in range(start, start + last):
                rem = cell
                for d in range(nd - 1, -1, -1):
                    pos[d] = rem % sizes[d]
                    rem //= sizes[d]
                acc = out.dtype.type(0)
                for t in range(taps):
                    rem = t
                    for d in range(nd - 1, -1, -1):
                        jj[d] = rem % k[d]
                        rem //= k[d]
                    ok = True
                    flat = 0
                    for d in range(nd):
                        if kind == 0:
                            i = pos[d] * s[d] + jj[d] * dil[d] - lo[d]
                            ok = ok and 0 <= i < size_in[d]
                            flat = flat * size_in[d] + i
                        else:
                            u = pos[d] + lo[d] - jj[d] * dil[d]
                            ok = ok and u >= 0 and u % s[d] == 0 and u // s[d] < size_out[d]
                            flat = flat * size_out[d] + u // s[d]
                    if ok:
                        if kind == 0:
                            acc += w[c * taps + t] * x[plane * in_plane + flat]
                        else:
                            acc += w[c * taps + t] * y[plane * out_plane + flat]
                out[plane * plane_cells + cell] = acc

    class NumbaKernels:
        @staticmethod
        def tile_width(code):
            return 16 if code == 0 else 8

        @staticmethod
        def run(kind, src, dst, dst_offset, weights, params):
            run(kind, src.reshape(-1), dst.reshape(-1), dst_offset, weights.reshape(-1), params)

        @staticmethod
        def copy(src, dst, dst_offset, params):
            copy(src.reshape(-1), dst.reshape(-1), dst_offset, params)

        @staticmethod
        def depthwise(kind, x, y, out, weights, params):
            depthwise(kind, y.reshape(-1) if x is None else x.reshape(-1), y.reshape(-1),
                      out.reshape(-1), weights.reshape(-1), params)

    return NumbaKernels


def one_thread(fn):
    """``fn`` with every pass of ``fast_native`` in the calling thread (no pool)."""
    def run():
        saved = fast_native._THREADED_SIZE
        fast_native._THREADED_SIZE = 1 << 62
        try:
            return fn()
        finally:
            fast_native._THREADED_SIZE = saved
    return run


def with_kernels(kernels, fn):
    """``fn`` run with ``fast_native``'s kernels swapped for ``kernels``."""
    def run():
        saved = fast_native.KERNELS
        fast_native.KERNELS = kernels
        try:
            return fn()
        finally:
            fast_native.KERNELS = saved
    return run


# -- BLAS with in-place accumulation ------------------------------------------------------------

def _gemm(dtype):
    return blas.sgemm if dtype == np.float32 else blas.dgemm


def blas_conv_transpose(y, w, spec):
    """Per phase: one GEMM per tap into the phase result over the padded grid (beta=1)."""
    n, g = spec.batch, spec.groups
    assert g == 1, "dense layers only"
    gemm = _gemm(y.dtype)
    per_dim = [phases(spec, d) for d in range(spec.ndim)]
    most = padded_once(per_dim)
    yp = np.pad(np.moveaxis(y, 1, -1), [(0, 0)] + list(most) + [(0, 0)])   # (N, *out', C)
    flat = yp.reshape(-1, spec.out_channels)
    x_last = np.zeros((n,) + spec.input_size + (spec.in_channels,), y.dtype)
    grid = yp.shape[1:-1]
    for combo in itertools.product(*per_dim):
        if any(not ph.taps or ph.count == 0 for ph in combo):
            continue
        starts = [lo - ph.pad[0] for (lo, _), ph in zip(most, combo)]
        kernel = sub_kernel_matrix(w, [ph.taps for ph in combo], 1)[0]        # (T*co, ci)
        taps = list(itertools.product(*[range(len(ph.taps)) for ph in combo]))
        shifts = [sum((b + t * ph.dilation) * st for b, t, ph, st in
                      zip(starts, shift, combo, _steps(grid))) for shift in taps]
        rows = flat.shape[0] - max(shifts)
        acc = np.asfortranarray(np.zeros((rows, spec.in_channels), y.dtype))
        co = spec.out_channels
        for i, sh in enumerate(shifts):
            # transposed views are Fortran-ordered: f2py passes them without a copy
            acc = gemm(1.0, flat[sh:sh + rows].T, kernel[i * co:(i + 1) * co].T, trans_a=1,
                       trans_b=1, beta=1.0, c=acc, overwrite_c=1)
        full = np.empty((flat.shape[0], spec.in_channels), y.dtype)
        full[:rows] = acc
        full = full.reshape(yp.shape[:-1] + (spec.in_channels,))
        valid = full[(slice(None),) + tuple(slice(0, ph.count) for ph in combo)]
        x_last[(slice(None),) + tuple(ph.cells(s) for ph, s in zip(combo, spec.stride))] = valid
    return np.ascontiguousarray(np.moveaxis(x_last, -1, 1))


def _steps(shape):
    return [math.prod(shape[i + 1:]) for i in range(len(shape))]


def _phase_grids(x, spec):
    """The padded channels-last input split into its stride phases (space-to-depth), each laid
    flat over the first phase's grid with zero rows after it, so that every tap's operand is a
    contiguous shift: ``({phase: (rows + extra, C_in)}, grid)``."""
    xp = np.pad(np.moveaxis(x, 1, -1), [(0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in
                                                   spec.padding] + [(0, 0)])
    grid = tuple(-(-m // s) for m, s in zip(xp.shape[1:-1], spec.stride))
    n, c = spec.batch, spec.in_channels
    rows = n * math.prod(grid)
    out = {}
    for r in itertools.product(*map(range, spec.stride)):
        part = xp[(slice(None),) + tuple(slice(ri, None, s) for ri, s in zip(r, spec.stride))]
        flat = np.zeros((rows + math.prod(grid), c), x.dtype)
        view = flat[:rows].reshape((n,) + grid + (c,))
        view[(slice(None),) + tuple(slice(0, m) for m in part.shape[1:-1])] = part
        out[r] = flat
    return out, grid


def _taps(spec):
    """Per kernel tap: its index, its phase and its shift inside the phase."""
    for j in itertools.product(*map(range, spec.kernel_size)):
        u = [jj * d for jj, d in zip(j, spec.dilation)]
        yield j, tuple(a % s for a, s in zip(u, spec.stride)), tuple(
            a // s for a, s in zip(u, spec.stride))


def blas_conv(x, w, spec):
    """Per tap one GEMM of its shifted phase into the output over the phase grid (beta=1)."""
    assert spec.groups == 1
    gemm = _gemm(x.dtype)
    parts, grid = _phase_grids(x, spec)
    n, co = spec.batch, spec.out_channels
    rows = n * math.prod(grid)
    acc = np.asfortranarray(np.zeros((rows, co), x.dtype))
    for j, r, sh in _taps(spec):
        shift = sum(a * st for a, st in zip(sh, _steps(grid)))
        acc = gemm(1.0, parts[r][shift:shift + rows].T, w[(slice(None), slice(None)) + j],
                   trans_a=1, trans_b=1, beta=1.0, c=acc, overwrite_c=1)
    y = acc.reshape((n,) + grid + (co,))[(slice(None),) + tuple(
        slice(0, m) for m in spec.output_size)]
    return np.ascontiguousarray(np.moveaxis(y, -1, 1))


def blas_weight_grad(x, g, spec):
    """Per tap one GEMM (cells x C_in)^T @ (cells x C_out) of its shifted phase and the
    gradient laid over the phase grid (zero outside the output)."""
    assert spec.groups == 1
    gemm = _gemm(x.dtype)
    parts, grid = _phase_grids(x, spec)
    n = spec.batch
    rows = n * math.prod(grid)
    gl = np.zeros((n,) + grid + (spec.out_channels,), x.dtype)
    gl[(slice(None),) + tuple(slice(0, m) for m in spec.output_size)] = np.moveaxis(g, 1, -1)
    gflat = gl.reshape(rows, -1)
    dw = np.empty(spec.weight_shape, x.dtype)
    for j, r, sh in _taps(spec):
        shift = sum(a * st for a, st in zip(sh, _steps(grid)))
        dw[(slice(None), slice(None)) + j] = gemm(1.0, gflat.T, parts[r][shift:shift + rows].T,
                                                  trans_b=1)
    return dw


# -- timing -------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", action="append", default=None,
                        help="layers whose name contains this (repeatable); default: the "
                             "three of the comparison")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--ops", default="conv_transpose,conv,weight_grad")
    parser.add_argument("--no-numba", action="store_true", help="skip the Numba port")
    parser.add_argument("--no-blas", action="store_true", help="skip the BLAS variant")
    args = parser.parse_args()
    import torch
    import torch.nn.functional as F

    names = args.layer or ["3-d", "depthwise", "256->128"]
    numba_k = None if args.no_numba else numba_kernels()
    for layer in bench.layers():
        if not any(n in layer.name for n in names):
            continue
        s = layer.spec
        rng = np.random.default_rng(0)
        x, w, g = (rng.standard_normal(sh).astype(args.dtype) for sh in
                   (s.input_shape, s.weight_shape, s.output_shape))
        tx, tw, tg = map(torch.from_numpy, (x, w, g))
        nd, pad = s.ndim, tuple(lo for lo, _ in s.padding)
        torch_fn = {
            "conv_transpose": lambda: getattr(F, f"conv_transpose{nd}d")(
                tg, tw, stride=s.stride, padding=pad, output_padding=s.output_padding,
                groups=s.groups),
            "conv": lambda: getattr(F, f"conv{nd}d")(tx, tw, stride=s.stride, padding=pad,
                                                     groups=s.groups),
            "weight_grad": lambda: getattr(torch.nn.grad, f"conv{nd}d_weight")(
                tx, tw.shape, tg, stride=s.stride, padding=pad, groups=s.groups)}
        ours = {"conv_transpose": lambda: transpose(g, w, s, "fast_native"),
                "conv": lambda: convolve(x, w, s, "fast_native"),
                "weight_grad": lambda: weight_grad(x, g, s, "fast_native")}
        theirs = {"conv_transpose": lambda: blas_conv_transpose(g, w, s),
                  "conv": lambda: blas_conv(x, w, s), "weight_grad": lambda: blas_weight_grad(
                      x, g, s)}
        for op in args.ops.split(","):
            candidates = {"c": ours[op], "c 1 thread": one_thread(ours[op])}
            if numba_k is not None:
                candidates["numba"] = with_kernels(numba_k, ours[op])
            if s.groups == 1 and not args.no_blas:
                candidates["blas"] = theirs[op]
            want = np.asarray(torch_fn[op]())
            for name, fn in candidates.items():    # warm-up (Numba compiles) and a check
                np.testing.assert_allclose(fn(), want, rtol=1e-3, atol=1e-2, err_msg=name)
            candidates["torch"] = torch_fn[op]
            times = {name: [] for name in candidates}
            for _ in range(args.repeats):
                for name, fn in candidates.items():
                    if name == "torch":
                        time.sleep(bench.SWITCH_PAUSE)
                        fn()
                    start = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - start)
            med = {name: float(np.median(t)) for name, t in times.items()}
            print(f"{layer.name} | {op} | " + " | ".join(
                f"{name} {med[name] * 1e3:.1f} ms ({med[name] / med['torch']:.2f})"
                for name in candidates), flush=True)


if __name__ == "__main__":
    main()
