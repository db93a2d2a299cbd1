"""Every conv_transpose method against the scatter reference and against exact arithmetic."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv.methods import reference, scatter
from tconv.ops import transpose
from tconv.spec import ConvSpec
from tconv.strategies import arrays_for, conv_specs

from oracle import assert_exact

OTHER_METHODS = [m for m in tconv.METHODS if m != "scatter"]


def test_methods_table():
    """METHODS holds every algorithm DESIGN.md names, and 'auto' is not one of them."""
    assert set(tconv.METHODS) >= {"scatter", "zero_insertion", "commuted", "matrix", "gemm",
                                  "polyphase"}
    assert "auto" not in tconv.METHODS


@settings(max_examples=300)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_every_method_equals_scatter_bit_for_bit_on_integers(spec, seed):
    """Integer data: every method, every spec, exactly the reference's numbers."""
    _, w, y = arrays_for(spec, seed)
    expected = transpose(y, w, spec, "scatter")
    assert expected.shape == spec.input_shape
    for method in OTHER_METHODS + ["auto"]:
        got = transpose(y, w, spec, method)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, expected, err_msg=f"{method}: {spec.describe()}")


@settings(max_examples=60)
@given(spec=conv_specs(max_out=3), seed=st.integers(0, 2**16))
def test_every_method_within_error_bound_of_exact_float64(spec, seed):
    """Float64 data: every method within the rounding bound of the exact result."""
    _, w, y = arrays_for(spec, seed, np.float64)
    for method in tconv.METHODS + ("auto",):
        assert_exact("conv_transpose", y, w, spec, transpose(y, w, spec, method), label=method)


@settings(max_examples=150)
@given(spec=conv_specs(), seed=st.integers(0, 2**16))
def test_scatter_is_the_adjoint_of_the_naive_forward_loop(spec, seed):
    """The reference itself: <conv(x), y> == <x, scatter(y)> with both naive loops, exactly."""
    result = tconv.dot_test(spec, forward_fn=reference.conv, adjoint_fn=scatter.conv_transpose,
                            seed=seed)
    assert result.passed and result.lhs == result.rhs


def test_the_original_experiment_by_hand():
    """4x4 input, 3x3 kernel, stride 2, padding 1: the formula written out cell by cell."""
    rng = np.random.default_rng(7)
    w = rng.integers(-4, 5, (1, 1, 3, 3))
    g = rng.integers(-4, 5, (1, 1, 2, 2))
    # x[a] receives g[i] * w[j] wherever 2*i + j - 1 == a (both dims)
    expected = np.zeros((4, 4), dtype=np.int64)
    for i0 in range(2):
        for i1 in range(2):
            for j0 in range(3):
                for j1 in range(3):
                    a0, a1 = 2 * i0 + j0 - 1, 2 * i1 + j1 - 1
                    if 0 <= a0 < 4 and 0 <= a1 < 4:
                        expected[a0, a1] += g[0, 0, i0, i1] * w[0, 0, j0, j1]
    for method in tconv.METHODS:
        got = tconv.conv_transpose(g, w, stride=2, padding=1, output_padding=1, method=method)
        np.testing.assert_array_equal(got[0, 0], expected, err_msg=method)
        got = tconv.conv_input_grad((1, 1, 4, 4), w, g, stride=2, padding=1, method=method)
        np.testing.assert_array_equal(got[0, 0], expected, err_msg=method)


@pytest.mark.parametrize("method", tconv.METHODS)
def test_four_and_five_spatial_dims(method):
    """Any number of spatial dims: 4-d and 5-d against the reference."""
    for size, k in [((3, 2, 4, 3), (2, 1, 3, 2)), ((2, 3, 2, 2, 3), (2, 2, 1, 2, 2))]:
        spec = ConvSpec.forward((1, 2) + size, (4, 1) + k, stride=2, padding=1, groups=2)
        _, w, y = arrays_for(spec, 3)
        np.testing.assert_array_equal(transpose(y, w, spec, method),
                                      scatter.conv_transpose(y, w, spec))


@pytest.mark.parametrize("method", tconv.METHODS)
def test_empty_batch(method):
    spec = ConvSpec.forward((0, 2, 5, 4), (3, 2, 3, 2), stride=2)
    x = tconv.conv_transpose(np.zeros(spec.output_shape), np.ones(spec.weight_shape), stride=2,
                             output_padding=spec.output_padding, method=method)
    assert x.shape == spec.input_shape == (0, 2, 5, 4)


@pytest.mark.parametrize("method", tconv.METHODS)
def test_cells_no_tap_reaches_are_zero(method):
    """Stride 3 and 5 over kernels 1 and 2: no tap reaches most cells of x, which are 0 whatever
    the memory the result is allocated in held before (a freed array of 7s, most likely);
    dense and depthwise."""
    for groups, w_shape in ((1, (3, 2, 1, 2)), (3, (3, 1, 1, 2))):
        spec = ConvSpec.transpose((2, 3, 3, 4), w_shape, stride=(3, 5), groups=groups)
        _, w, y = arrays_for(spec, 4)
        want = scatter.conv_transpose(y, w, spec)
        assert np.count_nonzero(want == 0) > want.size // 2
        for _ in range(3):
            junk = np.full(spec.input_shape, 7.0)
            del junk
            np.testing.assert_array_equal(transpose(y, w, spec, method), want)


@pytest.mark.parametrize("method", tconv.METHODS)
def test_depthwise(method):
    """groups == channels: each channel convolved with its own kernel, independently."""
    rng = np.random.default_rng(1)
    y = rng.integers(-3, 4, (2, 4, 3, 3))
    w = rng.integers(-3, 4, (4, 1, 3, 3))
    got = tconv.conv_transpose(y, w, stride=2, groups=4, method=method)
    for c in range(4):
        alone = tconv.conv_transpose(y[:, c:c + 1], w[c:c + 1], stride=2, method="scatter")
        np.testing.assert_array_equal(got[:, c:c + 1], alone)


from tconv.methods import fast_native  # noqa: E402

#: The compiled method's instruction sets this CPU runs (each one tested where it can run).
ISAS = ([] if not fast_native.AVAILABLE else
        ["base", "avx2", "avx512"][:["base", "avx2", "avx512"].index(
            fast_native._native.isa()[1]) + 1])


@pytest.mark.parametrize("method", ["fast_gemm", "fast_polyphase_cf"]
                         + [f"fast_native-{isa}" for isa in ISAS]
                         + [f"fast_native-{isa}-cl" for isa in ISAS[-1:]])
def test_threaded_paths_equal_scatter(method, monkeypatch):
    """fast_gemm adds two halves of the batch, fast_polyphase_cf runs two phases, and
    fast_native runs two halves of every pass, in threads on large outputs; with the threshold
    at 0 every spec takes that path and must still give the reference's numbers exactly
    (fast_native: with each instruction set's kernels, for the transposed convolution, the
    convolution and the weight gradient; ``-cl``: depthwise layers through the channels-last
    kernels too, as when their stride or kernel is beyond the channels-first kernels' bound)."""
    from tconv.methods import reference
    from tconv.methods import fast_gemm, fast_polyphase_cf
    from tconv.ops import convolve, weight_grad
    from tconv.sweep import draw_specs

    method, _, isa = method.partition("-")
    isa, _, layout = isa.partition("-")
    if layout:
        monkeypatch.setattr(fast_native, "channels_first_depthwise", lambda spec: False)
    module = {"fast_gemm": fast_gemm, "fast_polyphase_cf": fast_polyphase_cf,
              "fast_native": fast_native}[method]
    monkeypatch.setattr(module, "_THREADED_SIZE", 0)
    if isa:
        best = fast_native._native.isa()[0]
        fast_native._native.isa(isa)
    try:
        for i, spec in enumerate(draw_specs(80, seed=5)):
            x, w, y = arrays_for(spec, i)
            np.testing.assert_array_equal(transpose(y, w, spec, method),
                                          transpose(y, w, spec, "scatter"),
                                          err_msg=spec.describe())
            if isa:
                np.testing.assert_array_equal(convolve(x, w, spec, method),
                                              reference.conv(x, w, spec), err_msg=spec.describe())
                np.testing.assert_array_equal(weight_grad(x, y, spec, method),
                                              reference.weight_grad(x, y, spec),
                                              err_msg=spec.describe())
    finally:
        if isa:
            fast_native._native.isa(best)


#: Layers that cross every block boundary of the compiled dense kernels: more cells than a
#: chunk (96) and a weight-gradient block (192), across grid rows; input channels above a
#: K-block (128: sliced) and below it (several taps per block); output channels beyond one
#: panel with a partial last one; input channels leaving each remainder of a 6-row tile.
BLOCK_LAYERS = [
    dict(y=(2, 130, 7, 9), w=(130, 37, 3, 3), stride=2, padding=1, groups=1),
    dict(y=(3, 45, 18, 18), w=(45, 50, 3, 3), stride=1, padding=0, groups=1),
    dict(y=(2, 140, 9, 11), w=(140, 33, 2, 3), stride=(2, 3), padding=0, groups=2),
    dict(y=(2, 11, 15, 16), w=(11, 17, 3, 2), stride=2, padding=(1, 0), groups=1),
    dict(y=(1, 16, 5, 4, 6), w=(16, 9, 3, 3, 2), stride=(1, 2, 2), padding=1, groups=1),
]


@pytest.mark.parametrize("runs", [False, True], ids=["whole-batch", "sample-runs"])
@pytest.mark.parametrize("threads", [False, True], ids=["one-thread", "two-threads"])
@pytest.mark.parametrize("isa", ISAS)
def test_the_compiled_kernels_blocks_add_every_product_once(isa, threads, runs, monkeypatch):
    """The compiled kernels cut the cells, the weight rows and the output channels into blocks
    and keep running sums between them, and the drivers take the batch in runs of samples
    (here, with ``runs``, one sample per run): on layers that cross every boundary, with small
    integers (exact in every dtype), each instruction set's kernels give the naive loops'
    numbers bit for bit, for all three operations, in float32, float64 and int64."""
    from tconv.methods import reference
    from tconv.ops import convolve, weight_grad

    if threads:
        monkeypatch.setattr(fast_native, "_THREADED_SIZE", 0)
    if runs:
        monkeypatch.setattr(fast_native, "CHUNK_BYTES", 1)
    best = fast_native._native.isa()[0]
    fast_native._native.isa(isa)
    try:
        for i, layer in enumerate(BLOCK_LAYERS):
            spec = ConvSpec.transpose(layer["y"], layer["w"], stride=layer["stride"],
                                      padding=layer["padding"], groups=layer["groups"])
            rng = np.random.default_rng(i)
            x, w, y = (rng.integers(-3, 4, shape) for shape in
                       (spec.input_shape, spec.weight_shape, spec.output_shape))
            want = (scatter.conv_transpose(y, w, spec), reference.conv(x, w, spec),
                    reference.weight_grad(x, y, spec))
            for dtype in (np.int64, np.float32, np.float64):
                xd, wd, yd = (a.astype(dtype) for a in (x, w, y))
                got = (transpose(yd, wd, spec, "fast_native"),
                       convolve(xd, wd, spec, "fast_native"),
                       weight_grad(xd, yd, spec, "fast_native"))
                for op, g, e in zip(("conv_transpose", "conv", "weight_grad"), got, want):
                    assert g.dtype == dtype
                    np.testing.assert_array_equal(g, e, err_msg=f"{op} {dtype.__name__} "
                                                  f"{spec.describe()}")
    finally:
        fast_native._native.isa(best)


def test_the_depthwise_kernels_without_their_tap_table():
    """The channels-first depthwise kernels look each row's outer taps up in a table built
    once per call, and compute them row by row where the table would pass 2**20 entries
    (here 230 x 230 positions x 20): both ways give the other methods' numbers exactly."""
    from tconv.methods import fast_gemm, im2col

    if not fast_native.AVAILABLE:
        pytest.skip("the compiled extension is not built here")
    rng = np.random.default_rng(0)
    for size in ((1, 2, 12, 10, 5), (1, 2, 232, 232, 4)):
        spec = ConvSpec.forward(size, (2, 1, 3, 3, 3), groups=2, padding=(1, 0, 1))
        assert fast_native.channels_first_depthwise(spec)
        x, w, y = (rng.integers(-3, 4, shape) for shape in
                   (spec.input_shape, spec.weight_shape, spec.output_shape))
        np.testing.assert_array_equal(fast_native.conv(x, w, spec), im2col.conv(x, w, spec))
        np.testing.assert_array_equal(fast_native.weight_grad(x, y, spec),
                                      im2col.weight_grad(x, y, spec))
        np.testing.assert_array_equal(fast_native.conv_transpose(y, w, spec),
                                      fast_gemm.conv_transpose(y, w, spec))


def test_the_compiled_method_is_built_where_a_compiler_is():
    """The extension is optional so that installs without a C compiler work; where one is
    found, a failed build is a failure here, not a method silently missing from the tests."""
    import shutil
    import sysconfig

    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) or shutil.which("cc") or shutil.which("gcc"):
        assert fast_native.AVAILABLE and "fast_native" in tconv.METHODS
        assert fast_native.instruction_set() in ("base", "avx2", "avx512")


NUMPY_ONLY_SCRIPT = """
import sys
sys.modules["tconv._native"] = None          # as if the extension had not been built
import numpy as np
import tconv
from tconv.methods import fast_native, reference, scatter
from tconv.methods.auto import choose
from tconv.ops import convolve, transpose, weight_grad
from tconv.strategies import arrays_for
from tconv.sweep import draw_specs

assert not fast_native.AVAILABLE and "fast_native" not in tconv.METHODS
assert "fast_native" not in tconv.CONV_METHODS
for i, spec in enumerate(draw_specs(30, seed=2)):
    x, w, y = arrays_for(spec, i)
    assert "fast_native" not in {choose(op, spec, np.float32) for op in ("conv_transpose", "conv",
                                                                            "weight_grad")}
    assert np.array_equal(transpose(y, w, spec), scatter.conv_transpose(y, w, spec))
    assert np.array_equal(convolve(x, w, spec), reference.conv(x, w, spec))
    assert np.array_equal(weight_grad(x, y, spec), reference.weight_grad(x, y, spec))
try:
    tconv.conv_transpose(np.ones((1, 1, 3)), np.ones((1, 1, 2)), method="fast_native")
except tconv.ConvSpecError as e:
    assert "fast_native" in str(e) and "extension" in str(e), e
else:
    sys.exit("method='fast_native' ran without its extension")
"""


def test_a_numpy_only_install_runs_auto_without_the_extension():
    """Without ``tconv._native`` (no C compiler at install): no fast_native method, ``auto``
    picks NumPy methods and still computes the naive loops' numbers; asking for fast_native
    is a ConvSpecError that says why."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", NUMPY_ONLY_SCRIPT], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


FORK_SCRIPT = """
import multiprocessing, queue, sys
import numpy as np
method = sys.argv[1]
from tconv import ConvSpec
from tconv.ops import transpose

spec = ConvSpec.transpose((4, 16, 64, 64), (16, 8, 4, 4), stride=2, padding=1)
rng = np.random.default_rng(0)
y = rng.integers(-3, 4, spec.output_shape).astype(np.float32)
w = rng.integers(-3, 4, spec.weight_shape).astype(np.float32)
want = transpose(y, w, spec, method)            # large enough for the threaded passes

def child(results):
    results.put(transpose(y, w, spec, method))

context = multiprocessing.get_context("fork")
results = context.Queue()
process = context.Process(target=child, args=(results,))
process.start()
try:
    got = results.get(timeout=30)
except queue.Empty:
    process.kill()
    sys.exit("the forked child hung in the thread pool")
process.join()
sys.exit(0 if np.array_equal(got, want) else "the child computed other numbers")
"""


@pytest.mark.parametrize("method", ["fast_gemm"] + (["fast_native"] if ISAS else []))
def test_a_forked_child_runs_the_threaded_paths(method):
    """After the parent used the worker pool, a fork()ed child (multiprocessing's default on
    Linux) has none of its threads; it must start its own instead of waiting forever. (In a
    fresh interpreter: this test process has other libraries' threads that fork() would copy.)"""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", FORK_SCRIPT, method], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
