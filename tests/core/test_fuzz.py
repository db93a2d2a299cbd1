"""Fuzz: every public function and every method on random parameters, valid and invalid, huge
sizes under a low memory limit, odd arrays, NaN and infinities, threads and fork.

Every call returns exactly the shape ConvSpec predicts and the numbers of an independent
computation (the naive loops, a sparse scatter, PyTorch), or raises ConvSpecError — never another
exception, never more memory than the limit. The default run draws a few hundred examples (about
a minute); ``TCONV_FUZZ=N`` draws N of the main fuzz's examples and scales the others alike
(``TCONV_FUZZ=10000 make test`` is the long run).
"""
import itertools
import math
import os
import subprocess
import sys
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import tconv
from tconv import CONV_METHODS, METHODS, ConvSpec, ConvSpecError, exact, memory
from tconv.methods import reference, scatter
from tconv.ops import run
from tconv.strategies import conv_specs
from tconv.verify import gamma, unit_roundoff

#: Examples of the main fuzz; the others scale with it.
BASE = 400
FUZZ = int(os.environ.get("TCONV_FUZZ") or BASE)
OPERATIONS = ("conv_transpose", "conv", "weight_grad")


def examples(default: int) -> int:
    """``default`` examples in the quick run, ``default * TCONV_FUZZ / 400`` in a long one."""
    return max(1, default * FUZZ // BASE)


def fuzz(default: int, **kw):
    return settings(max_examples=examples(default), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much],
                    **kw)


def _methods(operation):
    return ("auto",) + (METHODS if operation == "conv_transpose" else CONV_METHODS)


# -- the independent computations ------------------------------------------------------------------

def _triplets(spec, dim):
    """``(p, j, q)`` with ``q = p*stride + j*dilation - pad_low`` inside the output, the kernel
    and the input of ``dim``: every product of the definition, enumerated from the smaller of
    the input and the output (a huge padding or stride never makes this long)."""
    s, d, k = spec.stride[dim], spec.dilation[dim], spec.kernel_size[dim]
    lo, n, out = spec.padding[dim][0], spec.input_size[dim], spec.output_size[dim]
    found = []
    for j in range(k):
        if out <= n:
            for p in range(out):
                q = p * s + j * d - lo
                if 0 <= q < n:
                    found.append((p, j, q))
        else:
            for q in range(n):
                p, rest = divmod(q + lo - j * d, s)
                if rest == 0 and 0 <= p < out:
                    found.append((p, j, q))
    return found


def sparse(operation, a, b, spec):
    """The operation summed over the products of its definition only (no padding, canvas or
    inserted zeros): the padding's share of conv and weight_grad is a zero product, so for
    finite data this is the definition, in memory of the operands and the result."""
    g = spec.groups
    ci, co = spec.in_channels // g, spec.out_channels // g
    shape = {"conv_transpose": spec.input_shape, "conv": spec.output_shape,
             "weight_grad": spec.weight_shape}[operation]
    out = np.zeros(shape, dtype=np.result_type(a, b, np.int64))
    for combo in itertools.product(*[_triplets(spec, d) for d in range(spec.ndim)]):
        p = tuple(t[0] for t in combo)
        j = tuple(t[1] for t in combo)
        q = tuple(t[2] for t in combo)
        for group in range(g):
            cin, cout = slice(group * ci, group * ci + ci), slice(group * co, group * co + co)
            if operation == "conv_transpose":       # a = y, b = w: x[q] += y[p] @ w[:, :, j]
                out[(slice(None), cin) + q] += a[(slice(None), cout) + p] @ b[(cout, slice(None))
                                                                             + j]
            elif operation == "conv":              # a = x, b = w: y[p] += w[:, :, j] @ x[q]
                out[(slice(None), cout) + p] += a[(slice(None), cin) + q] @ b[(cout, slice(None))
                                                                              + j].T
            else:                                  # a = x, b = g: dw[j] += g[p].T @ x[q]
                out[(cout, slice(None)) + j] += b[(slice(None), cout) + p].T @ a[
                    (slice(None), cin) + q]
    return out


def naive(operation, a, b, spec):
    """The naive loops of the definitions (the scatter for the transposed convolution)."""
    fn = {"conv_transpose": scatter.conv_transpose, "conv": reference.conv,
          "weight_grad": reference.weight_grad}[operation]
    with np.errstate(invalid="ignore", over="ignore"):
        return fn(a, b, spec)


# -- random parameters, valid and invalid ----------------------------------------------------------

@st.composite
def raw_parameters(draw):
    """Mostly plausible parameters, with up to two of them drawn from the full, partly invalid
    range: sizes 0..9, strides/dilations 0..4, paddings -1..5, groups 0..4, output_padding 0..4,
    channels 0..4, a kernel of the wrong rank."""
    nd = draw(st.integers(1, 4))
    broken = set(draw(st.lists(st.sampled_from(
        ["size", "kernel", "rank", "stride", "dilation", "padding", "groups", "channels",
         "output_padding", "w_in"]), max_size=2)))
    cap = 9 if nd <= 2 else 4                  # keep 3-d and 4-d arrays small
    per_dim = lambda lo, hi: draw(st.one_of(   # noqa: E731
        st.integers(lo, hi), st.tuples(*[st.integers(lo, hi)] * nd)))
    groups = draw(st.integers(0, 4) if "groups" in broken else st.integers(1, 3))
    per_group = st.integers(0, 3) if "channels" in broken else st.integers(1, 2)
    c_in, c_out = (max(groups, 1) * draw(per_group) for _ in range(2))
    w_in = draw(st.integers(0, 3)) if "w_in" in broken else c_in // max(groups, 1)
    rank = nd + draw(st.sampled_from([-1, 1])) if "rank" in broken else nd
    if "padding" in broken:
        padding = draw(st.one_of(
            st.integers(-1, 5), st.tuples(*[st.integers(-1, 5)] * nd),
            st.tuples(*[st.tuples(st.integers(-1, 5), st.integers(-1, 5))] * nd)))
    else:
        padding = draw(st.one_of(
            st.integers(0, 3), st.tuples(*[st.tuples(st.integers(0, 3), st.integers(0, 3))] * nd),
            st.sampled_from(["same", "valid"])))
    return dict(
        batch=draw(st.integers(0, 2)), c_in=c_in, c_out=c_out, w_in=w_in,
        size=tuple(draw(st.integers(0 if "size" in broken else 1, cap)) for _ in range(nd)),
        kernel=tuple(draw(st.integers(0 if "kernel" in broken else 1, 4)) for _ in range(rank)),
        stride=per_dim(0 if "stride" in broken else 1, 4),
        dilation=per_dim(0 if "dilation" in broken else 1, 4 if "dilation" in broken else 2),
        padding=padding, groups=groups,
        output_padding=per_dim(0, 4 if "output_padding" in broken else 1),
        method=draw(st.sampled_from(("auto",) + METHODS)),
        conv_method=draw(st.sampled_from(("auto",) + CONV_METHODS)),
        seed=draw(st.integers(0, 2**16)))


def _predicted(build):
    try:
        return build()
    except ConvSpecError:
        return None


def _check(call, expected_shape, want=None):
    """``call()`` has the predicted shape and ``want()``'s numbers, or raises ConvSpecError
    exactly when the prediction is None."""
    event("valid" if expected_shape is not None else "invalid")
    try:
        result = call()
    except ConvSpecError:
        assert expected_shape is None, "ConvSpecError although ConvSpec accepts the parameters"
        return
    assert expected_shape is not None, "a result although ConvSpec rejects the parameters"
    assert result.shape == expected_shape
    if want is not None:
        np.testing.assert_array_equal(result, want())


def _ints(rng, shape):
    return rng.integers(-3, 4, shape)


@fuzz(BASE)
@given(p=raw_parameters())
def test_conv_transpose_shape_values_or_spec_error(p):
    rng = np.random.default_rng(p["seed"])
    y = _ints(rng, (p["batch"], p["c_in"]) + p["size"])
    w = _ints(rng, (p["c_in"], p["w_in"]) + p["kernel"])
    kw = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])
    spec = _predicted(lambda: ConvSpec.transpose(y.shape, w.shape,
                                                 output_padding=p["output_padding"], **kw))
    _check(lambda: tconv.conv_transpose(y, w, output_padding=p["output_padding"],
                                        method=p["method"], **kw),
           spec and spec.input_shape, lambda: naive("conv_transpose", y, w, spec))
    if spec is not None:          # the same result asked for by output_size
        _check(lambda: tconv.conv_transpose(y, w, output_size=spec.input_size, method="auto",
                                            **kw), spec.input_shape,
               lambda: naive("conv_transpose", y, w, spec))


@fuzz(BASE)
@given(p=raw_parameters())
def test_conv_and_gradients_shape_values_or_spec_error(p):
    rng = np.random.default_rng(p["seed"])
    x = _ints(rng, (p["batch"], p["c_in"]) + p["size"])
    w = _ints(rng, (p["c_out"], p["w_in"]) + p["kernel"])
    kw = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])
    spec = _predicted(lambda: ConvSpec.forward(x.shape, w.shape, **kw))
    _check(lambda: tconv.conv(x, w, method=p["conv_method"], **kw), spec and spec.output_shape,
           lambda: naive("conv", x, w, spec))
    g = _ints(rng, spec.output_shape) if spec else np.ones((1, 1, 1), dtype=np.int64)
    _check(lambda: tconv.conv_input_grad(x.shape, w, g, method=p["method"], **kw),
           spec and spec.input_shape, lambda: naive("conv_transpose", g, w, spec))
    _check(lambda: tconv.conv_weight_grad(x, w.shape, g, method=p["conv_method"], **kw),
           spec and spec.weight_shape, lambda: naive("weight_grad", x, g, spec))


# -- huge sizes under a low memory limit -----------------------------------------------------------

LIMIT = 8 << 20
HUGE = st.one_of(st.integers(1, 8), st.integers(10**3, 10**7), st.integers(10**9, 10**13),
                 st.integers(2**62, 2**64), st.just(10**30))


@st.composite
def huge_parameters(draw):
    """Small arrays (at most 3 cells per dim, 2 channels), with strides, dilations, paddings,
    output sizes and shapes drawn up to and beyond int64."""
    nd = draw(st.integers(1, 3))
    dims = lambda strategy: tuple(draw(strategy) for _ in range(nd))  # noqa: E731
    return dict(
        nd=nd, size=dims(st.integers(1, 3)), kernel=dims(st.integers(1, 3)),
        channels=draw(st.integers(1, 2)), stride=dims(HUGE), dilation=dims(HUGE),
        padding=tuple((draw(st.one_of(st.just(0), HUGE)), draw(st.one_of(st.just(0), HUGE)))
                      for _ in range(nd)),
        input_shape=(1, draw(st.integers(1, 2))) + dims(HUGE),
        output_size=dims(HUGE) if draw(st.booleans()) else None,
        method=draw(st.sampled_from(("auto",) + METHODS)),
        conv_method=draw(st.sampled_from(("auto",) + CONV_METHODS)),
        seed=draw(st.integers(0, 2**16)))


def _warm():
    """Every operation and method once on tiny arrays, so that the imports and pools a first
    call makes are not counted as the memory of a fuzzed call."""
    x, w = np.ones((1, 1, 3)), np.ones((1, 1, 2))
    for operation, a, b in (("conv_transpose", x, w), ("conv", x, w),
                            ("weight_grad", x, np.ones((1, 1, 2)))):
        spec = (ConvSpec.transpose(a.shape, b.shape) if operation == "conv_transpose"
                else ConvSpec.forward(x.shape, (1, 1, 2)))
        for method in _methods(operation):
            run(operation, a, b, spec, method)


def _bounded(call):
    """``call()`` under tracemalloc: its result or ConvSpecError, and its peak bytes."""
    tracemalloc.start()
    try:
        try:
            result = call()
        except ConvSpecError as e:
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@fuzz(BASE // 2)
@given(p=huge_parameters())
def test_huge_sizes_are_refused_before_allocation(p):
    """With the limit at 8 MiB, every call either computes (the definition's numbers, within
    the limit) or raises ConvSpecError, and never holds more than the limit: refused before
    allocating, whatever the stride, padding or size (hanging, or NumPy's errors, before)."""
    _warm()
    rng = np.random.default_rng(p["seed"])
    c = p["channels"]
    y = rng.integers(-3, 4, (1, c) + p["size"])
    w = rng.integers(-3, 4, (c, c) + p["kernel"])
    kw = dict(stride=p["stride"], dilation=p["dilation"], padding=p["padding"])
    calls = [("conv_transpose", y, w,
              lambda: ConvSpec.transpose(y.shape, w.shape, output_size=p["output_size"], **kw),
              lambda: tconv.conv_transpose(y, w, output_size=p["output_size"],
                                           method=p["method"], **kw)),
             ("conv", y, w, lambda: ConvSpec.forward(y.shape, w.shape, **kw),
              lambda: tconv.conv(y, w, method=p["conv_method"], **kw))]
    shape = p["input_shape"]
    spec = _predicted(lambda: ConvSpec.forward(shape, (c, shape[1]) + p["kernel"], **kw))
    if spec is not None and math.prod(spec.output_shape) <= 4096:
        g = rng.integers(-3, 4, spec.output_shape)
        wg = rng.integers(-3, 4, spec.weight_shape)
        calls.append(("conv_transpose", g, wg, lambda: spec,
                      lambda: tconv.conv_input_grad(shape, wg, g, method=p["method"], **kw)))
    saved, tconv.MEMORY_LIMIT = tconv.MEMORY_LIMIT, LIMIT
    try:
        for operation, a, b, build, call in calls:
            result, peak = _bounded(call)
            assert peak <= LIMIT, (operation, peak)
            computed = not isinstance(result, ConvSpecError)
            event(f"{operation}: {'computed' if computed else 'refused'}")
            if computed:
                built = build()
                method = p["method"] if operation == "conv_transpose" else p["conv_method"]
                need = memory.plan(operation, built, method, a, b, np.result_type(a, b))
                assert peak <= need.total, (operation, method, peak, need)   # an upper bound
                np.testing.assert_array_equal(result, sparse(operation, a, b, built))
    finally:
        tconv.MEMORY_LIMIT = saved


@fuzz(BASE // 4)
@given(shape=st.tuples(*[st.integers(0, 2**45)] * 4), kernel=st.integers(1, 2**40),
       operation=st.sampled_from(["forward", "transpose"]))
def test_convspec_of_huge_shapes_is_exact_or_refused(shape, kernel, operation):
    """ConvSpec.forward/transpose on shapes no array could have: Python-integer arithmetic,
    and ConvSpecError where a size or an element count leaves int64."""
    build = ConvSpec.forward if operation == "forward" else ConvSpec.transpose
    try:
        spec = build(shape, (shape[1], 1, kernel, 1), groups=max(shape[1], 1))
    except ConvSpecError as e:
        assert "must" in str(e) or "beyond int64" in str(e) or "larger than" in str(e) or \
            "crops" in str(e), e
        return
    for s in (spec.input_shape, spec.output_shape, spec.weight_shape):
        assert max(s) <= 2**63 - 1 and math.prod(s) <= 2**63 - 1
    if operation == "forward":
        assert spec.output_size == (shape[2] - kernel + 1, shape[3])
    else:
        assert spec.input_size == (shape[2] + kernel - 1, shape[3])


# -- odd arrays ------------------------------------------------------------------------------------

REAL_DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
               "uint16", "uint32", "uint64", ">f8", ">i4", "<f4"]


def _odd(kind, a, rng):
    """``a`` in an odd layout or container; None where NumPy must refuse the kind."""
    if kind == "non-contiguous":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if kind == "negative strides":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if kind == "transposed":
        return np.ascontiguousarray(np.swapaxes(a, 0, 1)).swapaxes(0, 1)
    if kind == "read-only":
        b = a.copy()
        b.flags.writeable = False
        return b
    if kind == "list":
        return a.tolist()
    if kind == "fortran":
        return np.asfortranarray(a)
    raise AssertionError(kind)


LAYOUTS = ["non-contiguous", "negative strides", "transposed", "read-only", "list", "fortran"]
REFUSED = {
    "0-d": lambda a: np.float64(1.5),
    "ragged": lambda a: [[[1.0, 2.0]], [[1.0]]],
    "object": lambda a: a.astype(object),
    "complex": lambda a: a.astype(complex),
    "bool": lambda a: a > 0,
    "strings": lambda a: a.astype(str),
    "bytes": lambda a: a.astype(bytes),
    "datetime": lambda a: a.astype("datetime64[s]"),
    "None": lambda a: None,
}


@fuzz(BASE // 4)
@given(spec=conv_specs(max_out=3), dtype=st.sampled_from(REAL_DTYPES),
       layout=st.sampled_from(LAYOUTS), operation=st.sampled_from(OPERATIONS),
       which=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_odd_layouts_and_dtypes_compute_the_same_numbers(spec, dtype, layout, operation, which,
                                                         seed):
    """Every real dtype (big-endian too) and every layout (views, negative strides, read-only,
    Fortran order, nested lists): the numbers of the same contiguous native array, in the
    promoted dtype, and the operands untouched."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    shapes = {"conv_transpose": (spec.output_shape, spec.weight_shape),
              "conv": (spec.input_shape, spec.weight_shape),
              "weight_grad": (spec.input_shape, spec.output_shape)}[operation]
    low = 0 if dtype.kind == "u" else -3
    clean = [rng.integers(low, 4, s).astype(dtype) for s in shapes]
    operands = list(clean)
    operands[which] = _odd(layout, clean[which], rng)
    before = [np.array(o, copy=True) for o in operands]
    want = run(operation, clean[0].astype(dtype.newbyteorder("=")),
               clean[1].astype(dtype.newbyteorder("=")), spec, "auto")
    for method in _methods(operation):
        got = run(operation, np.asarray(operands[0]), np.asarray(operands[1]), spec, method)
        assert got.dtype == np.result_type(*map(np.asarray, operands))   # a list: NumPy's
        np.testing.assert_array_equal(got, want, err_msg=method)
    for o, b in zip(operands, before):
        np.testing.assert_array_equal(np.asarray(o), b)
    public = {"conv_transpose": lambda a, b: tconv.conv_input_grad(
                  spec.input_shape, b, a, stride=spec.stride, padding=spec.padding,
                  dilation=spec.dilation, groups=spec.groups),
              "conv": lambda a, b: tconv.conv(a, b, stride=spec.stride, padding=spec.padding,
                                              dilation=spec.dilation, groups=spec.groups),
              "weight_grad": lambda a, b: tconv.conv_weight_grad(
                  a, spec.weight_shape, b, stride=spec.stride, padding=spec.padding,
                  dilation=spec.dilation, groups=spec.groups)}[operation]
    if not spec.output_padding_exceeds_stride:
        np.testing.assert_array_equal(public(*operands), want)


@fuzz(BASE // 8)
@given(spec=conv_specs(max_out=3), kind=st.sampled_from(sorted(REFUSED)),
       operation=st.sampled_from(OPERATIONS), which=st.integers(0, 1))
def test_arrays_that_are_no_real_numbers_are_refused(spec, kind, operation, which):
    """0-d, ragged, object, complex, bool, strings, bytes, datetimes, None: ConvSpecError from
    every public function, naming what is wrong."""
    shapes = {"conv_transpose": (spec.output_shape, spec.weight_shape),
              "conv": (spec.input_shape, spec.weight_shape),
              "weight_grad": (spec.input_shape, spec.output_shape)}[operation]
    operands = [np.ones(s) for s in shapes]
    operands[which] = REFUSED[kind](operands[which])
    kw = dict(stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
              groups=spec.groups)
    call = {"conv_transpose": lambda: tconv.conv_transpose(
                operands[0], operands[1], output_padding=spec.output_padding, **kw),
            "conv": lambda: tconv.conv(operands[0], operands[1], **kw),
            "weight_grad": lambda: tconv.conv_weight_grad(
                operands[0], spec.weight_shape, operands[1], **kw)}[operation]
    with pytest.raises(ConvSpecError):
        call()


# -- NaN and infinities ----------------------------------------------------------------------------

def _sprinkle(a, rng):
    """``a`` with a few cells set to NaN, +inf, -inf or 0 at random."""
    a = a.copy()
    count = int(rng.integers(1, 4))
    a.flat[rng.integers(0, a.size, count)] = rng.choice([np.nan, np.inf, -np.inf, 0.0], count)
    return a


def _kinds(a):
    return np.isnan(a), np.isposinf(a), np.isneginf(a)


@fuzz(BASE // 4)
@given(spec=conv_specs(max_out=3), seed=st.integers(0, 2**20),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_nan_and_inf_land_where_torch_and_the_definition_put_them(spec, seed, dtype):
    """NaN and infinities at random in both operands, every operation and method: NaN, +inf
    and -inf exactly where PyTorch and the naive loops (IEEE arithmetic on the raw data) put
    them; every other cell within the rounding bound of the exact sum of its finite products.
    (PyTorch's oneDNN float32 kernel of a batched strided transposed convolution spreads NaN
    further: tests/core/test_nonfinite.py; there its own kernels are the reference.)"""
    import torch_reference

    rng = np.random.default_rng(seed)
    x, w, y = (rng.standard_normal(s).astype(dtype)
               for s in (spec.input_shape, spec.weight_shape, spec.output_shape))
    u = unit_roundoff(dtype)
    cases = {"conv_transpose": (y, w, spec.out_channels // spec.groups
                                * math.prod(spec.kernel_size)),
             "conv": (x, w, spec.in_channels // spec.groups * math.prod(spec.kernel_size)),
             "weight_grad": (x, y, spec.batch * math.prod(spec.output_size))}
    for operation, (a, b, terms) in cases.items():
        a, b = _sprinkle(a, rng), _sprinkle(b, rng)
        want = torch_reference.run(operation, a, b, spec, dtype, onednn=False)
        raw = naive(operation, a.astype(np.float64), b.astype(np.float64), spec)
        theirs = [want]
        if not (operation == "conv_transpose" and spec.batch > 1 and max(spec.stride) > 1):
            theirs.append(torch_reference.run(operation, a, b, spec, dtype))   # oneDNN too
        for result in theirs:
            for mine, other in zip(_kinds(raw), _kinds(result)):
                np.testing.assert_array_equal(mine, other, err_msg=f"torch vs loops {operation}")
        finite = np.isfinite(want)
        za, zb = (np.where(np.isfinite(v), v, 0) for v in (a, b))
        exact_fn = {"conv_transpose": exact.conv_transpose, "conv": exact.conv,
                    "weight_grad": exact.weight_grad}[operation]
        truth = exact_fn(za, zb, spec)
        magnitudes = naive(operation, np.abs(za).astype(np.float64),
                           np.abs(zb).astype(np.float64), spec)
        bound = gamma(terms, u) * magnitudes * (1 + 2.0**-40) + 2 * u * np.abs(truth)
        event(f"{operation}: {int((~finite).sum())} non-finite cells")
        for method in _methods(operation):
            got = run(operation, a, b, spec, method)
            for mine, theirs in zip(_kinds(got), _kinds(want)):
                np.testing.assert_array_equal(mine, theirs, err_msg=f"{method} {operation}")
            diff = np.abs(got.astype(np.float64)[finite] - truth[finite])
            assert np.all(diff <= bound[finite]), (method, operation, spec.describe())


# -- threads and fork ------------------------------------------------------------------------------

def _work(specs, seed, order=None):
    """Every operation and method on the specs (in ``order``): integer-valued float64 data
    drawn per spec, so that every result is exact and any two runs must agree bit for bit."""
    results = {}
    for i in range(len(specs)) if order is None else order:
        spec = specs[i]
        rng = np.random.default_rng([seed, i])
        x, w, y = (rng.integers(-3, 4, s).astype(np.float64)
                   for s in (spec.input_shape, spec.weight_shape, spec.output_shape))
        for operation, (a, b) in {"conv_transpose": (y, w), "conv": (x, w),
                                  "weight_grad": (x, y)}.items():
            for method in _methods(operation):
                results[i, operation, method] = run(operation, a, b, spec, method)
    return results


def _specs(count, seed):
    from tconv.sweep import draw_specs

    return draw_specs(count, seed=seed, max_out=6)


def test_threads_calling_every_method_at_once_agree(monkeypatch):
    """Four threads run every method on the same specs at once, each in another order, with the
    fast methods' own worker threads on (threshold 0): the same numbers as one thread alone."""
    from tconv.methods import fast_gemm, fast_polyphase_cf

    monkeypatch.setattr(fast_gemm, "_THREADED_SIZE", 0)
    monkeypatch.setattr(fast_polyphase_cf, "_THREADED_SIZE", 0)
    specs = _specs(examples(12), seed=17)
    alone = _work(specs, seed=3)
    start = threading.Barrier(4)

    def worker(shift):
        start.wait()
        return _work(specs, 3, [(i + shift) % len(specs) for i in range(len(specs))])

    with ThreadPoolExecutor(4) as pool:
        for got in pool.map(worker, range(4)):
            assert got.keys() == alone.keys()
            for key, value in got.items():
                np.testing.assert_array_equal(value, alone[key], err_msg=str(key))


FORK_SCRIPT = """
import multiprocessing, pickle, queue, sys
sys.path.insert(0, {tests!r})
import numpy as np
from tconv.methods import fast_gemm, fast_polyphase_cf
from test_fuzz import _specs, _work

fast_gemm._THREADED_SIZE = fast_polyphase_cf._THREADED_SIZE = 0   # the pool on every call
specs = _specs({count}, seed=23)
want = _work(specs, seed=5)           # the parent uses the worker pool first

def child(results):
    got = _work(specs, seed=5)
    results.put(all(np.array_equal(got[k], want[k]) for k in want) and got.keys() == want.keys())

context = multiprocessing.get_context("fork")
results = context.Queue()
process = context.Process(target=child, args=(results,))
process.start()
try:
    same = results.get(timeout=300)
except queue.Empty:
    process.kill()
    sys.exit("the forked child hung")
process.join()
sys.exit(0 if same else "the child computed other numbers")
"""


def test_a_forked_child_computes_every_method_after_the_parent_used_the_pool():
    """fork() after the parent's worker threads ran: the child (no threads of its own) builds
    its own pool and gets the parent's numbers for every operation and method. In a fresh
    interpreter: this process has other libraries' threads that fork() would copy."""
    script = FORK_SCRIPT.format(tests=os.path.dirname(__file__), count=examples(6))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr
