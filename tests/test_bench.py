"""`tconv bench --quick` as a smoke test (no timing assertions), and the multiply counts."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tconv import ConvSpec
from tconv.bench import OPS, layers
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
    assert len(quick_rows) == 2 * len(layers(quick=True))    # one per table
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
    spec = ConvSpec.transpose((4, 256, 64, 64), (256, 128, 2, 2), stride=2)
    assert choose("conv_transpose", spec) == "fast_polyphase_cf"          # 4096 cells per sample, 256 channels
    assert choose("conv_transpose", ConvSpec.transpose((16, 512, 8, 8), (512, 256, 4, 4), stride=2)) in (
        "fast_gemm", "fast_polyphase")                   # 64 cells, 512 channels
    assert choose("conv_transpose", spec, np.int64) == "fast_gemm"


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
