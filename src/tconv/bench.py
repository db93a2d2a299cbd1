"""Side-by-side timing of tconv's methods, PyTorch and JAX on the same layers, in one process.

Three operations per layer (:data:`OPS`): the input gradient (the transposed convolution), the
forward convolution it is the transpose of, and that convolution's weight gradient; all three
do the same multiply-adds. Every candidate of a layer runs once per round, rounds interleaved,
so that a busy machine slows all of them alike; only the ratios measured in one run mean
anything.

Candidates of one library run back to back; before the next library's, a pause of
:data:`SWITCH_PAUSE` and one untimed call of its last candidate (so that its first is timed
after a call of its own library on other data, as the others are). tconv counts as two
libraries here: its compiled kernels (``fast_native``, and ``auto`` where it runs them) and
its NumPy methods, whose GEMMs run in NumPy's BLAS pool. A BLAS or OpenMP pool keeps
its threads spinning for a while after a call, and a call of another library made meanwhile
shares the cores with them (measured: PyTorch's conv right after a NumPy GEMM took twice as long as
alone, after a 0.2 s pause as long as alone; the first NumPy call after JAX's still ran 1.4x
slow, the second not).

Each row reports the median and the range of the rounds, GFLOP/s counting
``2 * useful multiply-adds`` (the multiplies of the definition, none by an inserted zero), the
share of a NumPy float GEMM timed in the same run, the ratio to PyTorch's function for the
operation (:data:`REFERENCE`) and the peak extra memory NumPy allocated (tracemalloc;
frameworks allocate outside its view).
"""
from __future__ import annotations

import itertools
import math
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .methods import auto, fast_native
from .ops import convolve, transpose, weight_grad
from .spec import ConvSpec

#: The operations timed, and the PyTorch candidate each one's ratio is taken to.
OPS = ("input_grad", "conv", "weight_grad")
REFERENCE = {"input_grad": "torch conv_transpose", "conv": "torch conv",
             "weight_grad": "torch nn.grad"}


@dataclass(frozen=True)
class BenchLayer:
    """A named layer the bench times (its transposed convolution and the two others)."""

    name: str
    spec: ConvSpec

    @property
    def macs(self) -> int:
        """Useful multiply-adds: every gradient cell times every kernel tap and channel pair."""
        s = self.spec
        return (s.batch * math.prod(s.output_size) * s.out_channels
                * (s.in_channels // s.groups) * math.prod(s.kernel_size))


def _layer(name, y_shape, w_shape, stride, padding, groups=1, output_padding=0) -> BenchLayer:
    return BenchLayer(name, ConvSpec.transpose(y_shape, w_shape, stride=stride, padding=padding,
                                          groups=groups, output_padding=output_padding))


def layers(quick: bool = False) -> list[BenchLayer]:
    """The issue's five layers (weight is (C_in, C_out, k): transposed-conv terms), plus two."""
    if quick:
        return [
            _layer("DCGAN k4 s2 p1 (quick)", (2, 64, 8, 8), (64, 32, 4, 4), 2, 1),
            _layer("U-Net k2 s2 (quick)", (1, 32, 16, 16), (32, 16, 2, 2), 2, 0),
            _layer("1-d k8 s4 p2 (quick)", (2, 16, 256), (16, 16, 8), 4, 2),
            _layer("3-d k4 s2 p1 (quick)", (1, 8, 6, 6, 6), (8, 8, 4, 4, 4), 2, 1),
        ]
    return [
        _layer("DCGAN N16 512->256 8->16 k4 s2 p1", (16, 512, 8, 8), (512, 256, 4, 4), 2, 1),
        _layer("DCGAN N16 256->128 16->32 k4 s2 p1", (16, 256, 16, 16), (256, 128, 4, 4), 2, 1),
        _layer("U-Net N4 256->128 64->128 k2 s2", (4, 256, 64, 64), (256, 128, 2, 2), 2, 0),
        _layer("1-d N8 64->64 L4096 k8 s4 p2", (8, 64, 4096), (64, 64, 8), 4, 2),
        _layer("3-d N2 32->32 16^3->32^3 k4 s2 p1", (2, 32, 16, 16, 16), (32, 32, 4, 4, 4), 2, 1),
        _layer("depthwise N8 128ch 32->64 k4 s2 p1 g128", (8, 128, 32, 32), (128, 1, 4, 4), 2,
               1, groups=128),
        _layer("k3 s2 p1 op1 N8 64->64 32->64", (8, 64, 32, 32), (64, 64, 3, 3), 2, 1,
               output_padding=1),
    ]


def _framework_candidates(op: str, spec: ConvSpec, x: np.ndarray, w: np.ndarray,
                          g: np.ndarray) -> dict[str, Callable]:
    """Each installed framework's ready-to-time callables (``benchmark_callables``)."""
    from . import frameworks

    candidates: dict[str, Callable] = {}
    for name in frameworks.installed():
        candidates.update(frameworks.get(name).benchmark_callables(op, spec, x, w, g))
    return candidates


def _tconv_candidates(op: str, spec: ConvSpec, x: np.ndarray, w: np.ndarray, g: np.ndarray,
                      methods, conv_methods) -> dict[str, Callable]:
    if op == "input_grad":
        return {f"tconv {m}": (lambda m=m: transpose(g, w, spec, m)) for m in methods}
    if op == "conv":
        return {f"tconv {m}": (lambda m=m: convolve(x, w, spec, m)) for m in conv_methods}
    return {f"tconv {m}": (lambda m=m: weight_grad(x, g, spec, m)) for m in conv_methods}


def gemm_gflops(dtype, size: int = 1024, repeats: int = 9) -> float:
    """NumPy's square GEMM rate in this run (the yardstick of the 'share' column): its fastest
    of ``repeats`` calls, the rate the BLAS reaches when nothing else holds the cores (a median
    once read half the rate of the same run's other GEMMs)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times) / 1e9


@dataclass
class Timing:
    layer: str
    op: str
    dtype: str
    candidate: str
    times: list[float] = field(default_factory=list)
    peak_bytes: int | None = None
    macs: int = 0
    note: str = ""
    runs: str | None = None           # the method "tconv auto" ran
    output_bytes: int = 0             # the operation's result
    largest_bytes: int = 0            # the largest of its operands and result
    parts: dict | None = None         # fast_native: share of the time per pass

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else float("nan")

    def to_dict(self, gemm: float, reference: float | None,
                reference_min: float | None = None) -> dict:
        ms = self.median * 1e3
        gflops = 2 * self.macs / self.median / 1e9 if self.times else None
        return {"layer": self.layer, "op": self.op, "dtype": self.dtype,
                "candidate": self.candidate,
                "median_ms": ms, "min_ms": min(self.times) * 1e3 if self.times else None,
                "max_ms": max(self.times) * 1e3 if self.times else None,
                "gflops": gflops, "gemm_share": gflops / gemm if gflops else None,
                "ratio_to_torch": self.median / reference if reference else None,
                # fastest round over fastest round: less moved by other processes' load
                "min_ratio_to_torch": (min(self.times) / reference_min
                                       if reference_min and self.times else None),
                "peak_extra_mb": None if self.peak_bytes is None else self.peak_bytes / 2**20,
                # the memory bar: what it allocated beyond the result it returns
                "output_bytes": self.output_bytes, "largest_bytes": self.largest_bytes,
                "extra_over_output": None if self.peak_bytes is None or not self.output_bytes
                else max(0, self.peak_bytes - self.output_bytes) / self.output_bytes,
                "extra_over_largest": None if self.peak_bytes is None or not self.largest_bytes
                else max(0, self.peak_bytes - self.output_bytes) / self.largest_bytes,
                "runs": self.runs, "parts": self.parts, "note": self.note}


#: Seconds to wait when the timed library changes (see the module docstring).
SWITCH_PAUSE = 0.2


def _library(candidate: str, runs: str | None = None) -> str:
    """The thread pool a candidate leaves behind: the framework's (its name's first word), or
    for a tconv candidate (``"tconv METHOD"``; ``runs``: the method ``auto`` ran) the compiled
    kernels' (no spinning threads) or NumPy's BLAS (OpenBLAS threads spin for a while after a
    GEMM)."""
    library, _, method = candidate.partition(" ")
    if library != "tconv":
        return library
    return "tconv compiled" if (runs or method) == "fast_native" else "tconv numpy"


def _by_library(candidates: dict[str, Callable], library: dict[str, str]) -> dict[str, Callable]:
    """``candidates`` with each library's consecutive, in the order of their first."""
    first = {}
    for name in candidates:
        first.setdefault(library[name], len(first))
    return dict(sorted(candidates.items(), key=lambda item: first[library[item[0]]]))


def _settle_between_libraries(candidates: dict[str, Callable],
                              library: dict[str, str]) -> Callable[[str], None]:
    """A function to call before each candidate (each library's are consecutive): when the
    library changes, it pauses and runs that library's last candidate once untimed, so that
    the first one is timed after a call of its library on other data, as every other is."""
    last_of = {library[name]: fn for name, fn in candidates.items()}
    current = [None]

    def before(name: str) -> None:
        if current[0] is not None and library[name] != current[0]:
            time.sleep(SWITCH_PAUSE)
            last_of[library[name]]()
        current[0] = library[name]

    return before


def _peak_bytes(fn: Callable) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


DEFAULT_METHODS = ("auto", "fast_gemm", "fast_polyphase", "fast_polyphase_cf", "gemm", "polyphase",
                   "zero_insertion")
DEFAULT_CONV_METHODS = ("auto", "direct", "im2col") + (
    ("fast_native",) if fast_native.AVAILABLE else ())
if fast_native.AVAILABLE:
    DEFAULT_METHODS = DEFAULT_METHODS[:4] + ("fast_native",) + DEFAULT_METHODS[4:]


def auto_runs(op: str, spec: ConvSpec, dtype) -> str:
    """The method ``auto`` runs for the bench's ``op`` on ``spec`` in ``dtype``."""
    return auto.choose("conv_transpose" if op == "input_grad" else op, spec, dtype)


def profile(fn: Callable, method: str, gemm: float, macs: int, rounds: int = 3) -> dict | None:
    """Where a fast_native run spends its time: the share of the wall time in the compiled
    kernel (the multiply-adds), in the layout copies, and the rest (Python, allocation), and
    the kernel's own GFLOP/s as a share of NumPy's square GEMM in this run."""
    if method != "fast_native":
        return None
    fast_native.PROFILE = {}
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        total = time.perf_counter() - start
        parts = dict(fast_native.PROFILE)
    finally:
        fast_native.PROFILE = None
    kernel, layout = parts.get("kernel", 0.0), parts.get("layout", 0.0)
    return {"kernel": kernel / total, "layout": layout / total,
            "other": max(0.0, 1 - (kernel + layout) / total),
            "kernel_of_gemm": (2 * macs * rounds / kernel / 1e9 / gemm) if kernel else None}


def run(layers_: list[BenchLayer], *, dtypes=("float32", "float64"), methods=DEFAULT_METHODS,
        ops=OPS, conv_methods=DEFAULT_CONV_METHODS, repeats: int = 5, frameworks: bool = True,
        progress: Callable[[], None] | None = None) -> tuple[list[Timing], dict[str, float]]:
    """Time every candidate of every op on every layer; rounds interleaved. ``methods`` are the
    input gradient's, ``conv_methods`` the forward's and the weight gradient's. Returns the
    timings and the GEMM rates."""
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ValueError(f"ops {unknown} are not among {OPS}")
    gemm = {dt: gemm_gflops(dt) for dt in dtypes}
    timings: list[Timing] = []
    for layer, op, dt in itertools.product(layers_, ops, dtypes):
        spec = layer.spec
        rng = np.random.default_rng(0)
        x, w, g = (rng.standard_normal(shape).astype(dt) for shape in
                   (spec.input_shape, spec.weight_shape, spec.output_shape))
        candidates = _tconv_candidates(op, spec, x, w, g, methods, conv_methods)
        if frameworks:
            candidates.update(_framework_candidates(op, spec, x, w, g))
        out_bytes = {"input_grad": x.nbytes, "conv": g.nbytes, "weight_grad": w.nbytes}[op]
        rows = {name: Timing(layer.name, op, dt, name, macs=layer.macs, output_bytes=out_bytes,
                             largest_bytes=max(x.nbytes, w.nbytes, g.nbytes))
                for name in candidates}
        if "tconv auto" in rows:
            rows["tconv auto"].runs = auto_runs(op, spec, np.dtype(dt))
        library = {name: _library(name, rows[name].runs) for name in candidates}
        candidates = _by_library(candidates, library)
        before = _settle_between_libraries(candidates, library)
        for name, fn in candidates.items():
            before(name)
            if name.startswith("tconv"):
                rows[name].peak_bytes = _peak_bytes(fn)   # also the warm-up
            else:
                fn()
        for _ in range(repeats):
            for name, fn in candidates.items():
                before(name)
                start = time.perf_counter()
                fn()
                rows[name].times.append(time.perf_counter() - start)
            if progress:
                progress()
        if "tconv auto" in rows:
            before("tconv auto")          # after the last library's pool has settled
            rows["tconv auto"].parts = profile(candidates["tconv auto"], rows["tconv auto"].runs,
                                               gemm[dt], layer.macs)
        timings.extend(rows.values())
    return timings, gemm
