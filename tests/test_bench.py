"""`tconv bench --quick` as a smoke test (no timing assertions), and the multiply counts."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tconv import ConvSpec
from tconv.bench import layers
from tconv.cost import choose, multiplies


def test_bench_quick_runs_every_candidate_and_reports_sane_numbers():
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "bench", "--quick", "--json",
                           "--dtypes", "float32", "--methods", "auto,fast_gemm,polyphase"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["gemm_gflops"]["float32"] > 0
    rows = report["timings"]
    quick = {ly.name for ly in layers(quick=True)}
    assert {r["layer"] for r in rows} == quick
    for r in rows:
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]
        assert r["gflops"] > 0
    cands = {r["candidate"] for r in rows}
    assert {"tconv auto", "tconv fast_gemm", "tconv polyphase"} <= cands
    from tconv import backends
    if backends.available("torch"):
        assert {"torch conv_transpose", "torch autograd"} <= cands
        assert all(r["ratio_to_torch"] > 0 for r in rows)
    if backends.available("jax"):
        assert "jax vjp (jit)" in cands


def test_bench_bad_method_exits_2():
    proc = subprocess.run([sys.executable, "-m", "tconv.cli", "bench", "--methods", "fft"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--methods: 'fft'" in proc.stderr


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
    assert choose(spec) == "fast_polyphase_cf"          # 4096 cells per sample, 256 channels
    assert choose(ConvSpec.transpose((16, 512, 8, 8), (512, 256, 4, 4), stride=2)) in (
        "fast_gemm", "fast_polyphase")                   # 64 cells, 512 channels
    assert choose(spec, np.int64) == "fast_gemm"
