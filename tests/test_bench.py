"""`tconv bench --quick` as a smoke test (no timing assertions), and the multiply counts."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tconv import ConvSpec
import os

from tconv.bench import OPS, auto_runs, layers
from tconv.hardware import one_line
from tconv.methods.auto import choose, multiplies


def test_bench_quick_runs_every_candidate_and_reports_sane_numbers(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "bench", "--quick", "--json",
                           "--dtypes", "float32", "--methods", "auto,fast_gemm,polyphase"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # benchmarks/tables.py turns the report into docs/performance.md's two tables
    (tmp_path / "bench.json").write_text(proc.stdout)
    script = Path(__file__).parents[1] / "benchmarks" / "tables.py"
    md = subprocess.run([sys.executable, str(script), str(tmp_path / "bench.json")],
                        capture_output=True, text=True, check=True).stdout
    quick_rows = [line for line in md.splitlines() if "(quick) | float32 |" in line]
    assert len(quick_rows) == 3 * len(layers(quick=True))    # input grad; conv, weight grad
    # the run's hardware, above the tables, from the same report
    hw = report["hardware"]
    assert md.splitlines()[0] == "Hardware: " + one_line(hw)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    assert hw["avx512f"] == (" avx512f" in flags) and hw["avx2"] == (" avx2" in flags)
    assert hw["simd"] == ("avx512f" if hw["avx512f"] else "avx2" if hw["avx2"] else hw["simd"])
    assert hw["cores"] == os.cpu_count()
    from threadpoolctl import threadpool_info
    numpy_pool = [i for i in threadpool_info() if i["user_api"] == "blas"
                  and "numpy" in i["filepath"]]
    assert hw["numpy_blas"]["version"] == numpy_pool[0]["version"]
    assert hw["numpy_blas"]["num_threads"] >= 1
    # what auto ran, per operation: the cost model's choice, and a method that exists
    for r in report["timings"]:
        if r["candidate"] == "tconv auto":
            spec = next(ly.spec for ly in layers(quick=True) if ly.name == r["layer"])
            assert r["runs"] == auto_runs(r["op"], spec, np.dtype(r["dtype"]))
            assert f"| {r['runs']} |" in md
            result_shape = {"input_grad": spec.input_shape, "conv": spec.output_shape,
                            "weight_grad": spec.weight_shape}[r["op"]]
            assert r["extra_over_output"] == pytest.approx(max(
                0, r["peak_extra_mb"] * 2**20 - 4 * np.prod(result_shape)) / (
                    4 * np.prod(result_shape)))
            if r["runs"] == "fast_native":
                parts = r["parts"]
                assert 0 < parts["kernel"] <= 1 and 0 <= parts["layout"] <= 1
                assert parts["kernel"] + parts["layout"] + parts["other"] == pytest.approx(1)
    auto = next(r for r in report["timings"] if r["op"] == "input_grad"
                and r["candidate"] == "tconv auto")
    assert f"| {auto['median_ms']:.1f} |" in md
    assert report["gemm_gflops"]["float32"] > 0
    rows = report["timings"]
    quick = {ly.name for ly in layers(quick=True)}
    assert {r["layer"] for r in rows} == quick
    assert {r["op"] for r in rows} == {"input_grad", "conv", "weight_grad"}
    for r in rows:
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["gflops"] > 0
    cands = {op: {r["candidate"] for r in rows if r["op"] == op} for op in OPS}
    assert {"tconv auto", "tconv fast_gemm", "tconv polyphase"} == cands["input_grad"] & {
        "tconv auto", "tconv fast_gemm", "tconv polyphase", "tconv direct", "tconv im2col"}
    assert {"tconv auto", "tconv direct", "tconv im2col"} <= cands["conv"] & cands["weight_grad"]
    from tconv import frameworks as backends
    if backends.available("torch"):
        import torch
        assert hw["torch"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
        assert {"torch conv_transpose", "torch autograd"} <= cands["input_grad"]
        assert "torch conv" in cands["conv"]
        assert {"torch nn.grad", "torch autograd"} <= cands["weight_grad"]
        assert all(r["ratio_to_torch"] > 0 for r in rows)
    if backends.available("jax"):
        assert "jax vjp (jit)" in cands["input_grad"] & cands["weight_grad"]
        assert "jax conv (jit)" in cands["conv"]


def test_bench_bad_method_or_op_exits_2():
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "bench", "--methods", "fft"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--methods: 'fft'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "bench", "--ops", "conv,backward"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--ops 'conv,backward'" in proc.stderr
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("y, w, stride, padding", [
    ((2, 3, 5, 4), (3, 2, 4, 2), (2, 2), 1),
    ((1, 2, 6), (2, 4, 6), (3,), 2),
    ((1, 1, 3, 3, 3), (1, 1, 4, 4, 4), (2, 2, 2), 1),
])
def test_polyphase_multiplies_one_over_prod_stride_of_zero_insertion(y, w, stride, padding):
    """Kernel a multiple of the stride: the counts differ by exactly prod(stride). Counted
    independently by brute force: zero insertion multiplies every tap at every output cell;
    the sub-pixel form only the taps whose position lines up with a gradient sample
    ((q + pad_low - j*dilation) divisible by the stride), once per channel pair."""
    spec = ConvSpec.transpose(y, w, stride=stride, padding=padding)
    zi, pp = multiplies(spec, "zero_insertion"), multiplies(spec, "polyphase")
    assert zi == pp * np.prod(stride)
    channels = spec.batch * spec.in_channels * spec.out_channels // spec.groups
    all_taps = lined_up = 0
    for q in np.ndindex(*spec.input_size):
        for j in np.ndindex(*spec.kernel_size):
            all_taps += 1
            lined_up += all((qi + lo - ji * d) % s == 0 for qi, ji, d, s, (lo, _) in
                            zip(q, j, spec.dilation, spec.stride, spec.padding))
    assert zi == all_taps * channels
    assert pp == lined_up * channels


def test_auto_picks_a_fast_method():
    """The cost model's rule, on the bench's layers: fast_native wherever it is built, for
    every operation and every dtype its kernels take (float16 computes in float32). The NumPy
    methods' rule without the extension."""
    from tconv.methods import fast_native

    unet = ConvSpec.transpose((4, 256, 64, 64), (256, 128, 2, 2), stride=2)
    dcgan = ConvSpec.transpose((16, 512, 8, 8), (512, 256, 4, 4), stride=2, padding=1)
    depthwise = ConvSpec.transpose((8, 128, 32, 32), (128, 1, 4, 4), stride=2, padding=1,
                                   groups=128)
    narrow = ConvSpec.transpose((2, 32, 16, 16, 16), (32, 32, 4, 4, 4), stride=2, padding=1)
    if fast_native.AVAILABLE:
        for op in ("conv_transpose", "conv", "weight_grad"):
            for spec in (unet, dcgan, depthwise, narrow):
                for dtype in (np.float32, np.float64, np.float16, np.int64, np.int8):
                    assert choose(op, spec, dtype) == "fast_native", (op, spec, dtype)
            assert choose(op, unet, np.longdouble) != "fast_native"
        # longdouble is not a dtype of the kernels
        assert choose("conv_transpose", unet, np.longdouble) == "fast_polyphase_cf"
    else:
        # 4096 cells per sample and 256 channels; 64 cells and 512 channels
        assert choose("conv_transpose", unet) == "fast_polyphase_cf"
        assert choose("conv_transpose", dcgan) in ("fast_gemm", "fast_polyphase")
        assert choose("conv_transpose", unet, np.int64) == "fast_gemm"
        assert choose("conv", unet, np.float32) == "im2col"


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("spec", [
    ConvSpec.transpose((2, 4, 3, 5), (4, 3, 4, 3), stride=(2, 1), padding=1),
    # output_padding past the stride: x has cells beyond the last window, y must be cut
    ConvSpec.transpose((1, 2, 3), (2, 2, 2), stride=1, dilation=3, output_padding=2),
], ids=["2d", "op>=stride"])
def test_every_timed_candidate_computes_the_operation(op, spec):
    """What the bench times is the operation it names: every candidate's result, tconv's and
    the frameworks', equals the naive loop's (float32, to the rounding of a few terms)."""
    from tconv.methods import reference, scatter
    from tconv.bench import _framework_candidates, _tconv_candidates

    rng = np.random.default_rng(1)
    x, w, g = (rng.standard_normal(s).astype(np.float32) for s in
               (spec.input_shape, spec.weight_shape, spec.output_shape))
    wide = [a.astype(np.float64) for a in (x, w, g)]
    want = {"input_grad": lambda: scatter.conv_transpose(wide[2], wide[1], spec),
            "conv": lambda: reference.conv(wide[0], wide[1], spec),
            "weight_grad": lambda: reference.weight_grad(wide[0], wide[2], spec)}[op]()
    candidates = _tconv_candidates(op, spec, x, w, g, ("auto", "fast_gemm"), ("direct", "im2col"))
    candidates.update(_framework_candidates(op, spec, x, w, g))
    from tconv import frameworks as backends
    frameworks = {name.split()[0] for name in candidates} - {"tconv"}
    assert frameworks == {b for b in ("torch", "jax") if backends.available(b)}
    for name, fn in candidates.items():
        got = np.asarray(fn())
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4, err_msg=name)


def test_candidates_settle_by_the_thread_pool_they_leave(monkeypatch):
    """tconv's candidates belong to the pool they leave behind: the compiled kernels'
    (fast_native, and auto where it runs them) or NumPy's BLAS; each pool's candidates run
    together, and a change of pool pauses and calls that pool's last candidate untimed."""
    from tconv import bench

    names = ["tconv auto", "tconv fast_gemm", "tconv fast_native", "torch conv", "tconv im2col",
             "jax vjp"]
    runs = {"tconv auto": "fast_native"}
    library = {name: bench._library(name, runs.get(name)) for name in names}
    assert library == {"tconv auto": "tconv compiled", "tconv fast_gemm": "tconv numpy",
                       "tconv fast_native": "tconv compiled", "torch conv": "torch",
                       "tconv im2col": "tconv numpy", "jax vjp": "jax"}
    assert bench._library("tconv auto", "im2col") == "tconv numpy"
    calls = []
    candidates = bench._by_library({name: (lambda name=name: calls.append(name))
                                    for name in names}, library)
    assert list(candidates) == ["tconv auto", "tconv fast_native", "tconv fast_gemm",
                                "tconv im2col", "torch conv", "jax vjp"]
    pauses = []
    monkeypatch.setattr(bench.time, "sleep", pauses.append)
    before = bench._settle_between_libraries(candidates, library)
    for name in candidates:
        before(name)
        calls.append(f"timed {name}")
    assert pauses == [bench.SWITCH_PAUSE] * 3
    assert calls == ["timed tconv auto", "timed tconv fast_native",
                     "tconv im2col", "timed tconv fast_gemm", "timed tconv im2col",
                     "torch conv", "timed torch conv", "jax vjp", "timed jax vjp"]
