"""The explanation, animation frames, shape and overlap data against independent computations."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tconv
from tconv.explain import story
from tconv.methods import reference
from tconv.explain.animation import MAX_FRAMES, animate
from tconv.ops import transpose
from tconv.spec import ConvSpec, ConvSpecError
from tconv.strategies import arrays_for, conv_specs

EXPERIMENT = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)


def _torch():
    return pytest.importorskip("torch")


# -- the original experiment, recomputed with PyTorch ----------------------------------------------

def test_default_explanation_is_the_original_experiment():
    """Every array of the experiment, as docs/origin.md computes it with torch."""
    torch = _torch()
    F = torch.nn.functional
    e = story.explain(EXPERIMENT)
    x = torch.tensor(e.x, requires_grad=True)
    w = torch.tensor(e.w)
    o = F.conv2d(x, w, stride=2, padding=1)
    (o * o).sum().div(2).backward()
    np.testing.assert_allclose(e.step("forward").panel("o = conv").values, o.detach().numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(e.result, x.grad.numpy(), rtol=1e-12, atol=1e-12)
    # o_stride: o at the even positions of a 3x3 array of zeros, padded 1 low and 2 high
    stretched = e.step("zero_insertion").panel("g with zeros").values
    assert stretched.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(stretched[..., ::2, ::2], e.g)
    assert np.count_nonzero(stretched[..., 1::2, :]) == 0
    assert np.count_nonzero(stretched[..., :, 1::2]) == 0
    padded = e.step("padding").panel("g stretched").values
    np.testing.assert_array_equal(padded, np.pad(stretched, [(0, 0), (0, 0), (1, 2), (1, 2)]))
    assert e.step("padding").facts["transpose_padding"] == ((1, 2), (1, 2))
    flipped = e.step("kernel").panel("w flipped").values
    np.testing.assert_array_equal(flipped, torch.flip(w, [2, 3]).numpy())
    # backward conv 2: conv2d(o_stride, flip(w), padding=1), with o_stride 4x4 (one zero row added)
    o_stride = torch.zeros(1, 1, 4, 4, dtype=o.dtype)
    o_stride[..., ::2, ::2] = o.detach()
    conv2 = F.conv2d(o_stride, torch.flip(w, [2, 3]), padding=1)
    np.testing.assert_allclose(e.step("convolution").panel("dL/dx").values, conv2.numpy(),
                               rtol=1e-12, atol=1e-12)
    assert e.step("phases").facts == {"phases": 4, "multiplies": 36, "dense_multiplies": 144}
    c = e.step("matrix").panel("C").values
    assert c.shape == (4, 16)
    np.testing.assert_allclose(c @ e.x.ravel(), o.detach().numpy().ravel(), rtol=1e-12)
    np.testing.assert_allclose(c.T @ e.g.ravel(), x.grad.numpy().ravel(), rtol=1e-12,
                               atol=1e-12)


def test_experiment_texts_carry_the_numbers():
    e = story.explain(EXPERIMENT, ints=True)
    assert "floor((4 + 1 + 1 - 3) / 2) + 1 = 2" in e.step("forward").text
    assert "Input sizes 3 (output_padding 0), 4 (output_padding 1)" in e.step("dropped").text
    assert "3-1-1 = 1" in e.step("padding").text and "3-1-1+1 = 2" in e.step("padding").text
    assert "stride=2, padding=1, output_padding=1" in e.step("convolution").text
    assert e.step("matrix").facts["nnz"] == 25   # 4 outputs x 9 taps, minus the 11 in the padding


# -- random specs: every array equals the engine's results -----------------------------------------

@settings(max_examples=40)
@given(spec=conv_specs(max_out=3, max_groups=2), seed=st.integers(0, 2**16))
def test_explanation_arrays_equal_the_engine(spec, seed):
    x, w, g = arrays_for(spec, seed)
    e = story.explain(spec, x, w, g)
    np.testing.assert_array_equal(e.step("forward").panel("o = conv").values,
                                  reference.conv(x, w, spec))
    for method in tconv.METHODS:
        np.testing.assert_array_equal(e.result, transpose(g, w, spec, method), err_msg=method)
    np.testing.assert_array_equal(e.step("convolution").panel("dL/dx").values, e.result)
    np.testing.assert_array_equal(e.step("scatter").panel("dL/dx").values, e.result)
    assert e.step("convolution").facts["equals_scatter"]

    # the scatter canvas: x sits at pad_low, the rest is the forward padding (cropped)
    canvas = e.step("scatter").panel("sum of the copies")
    window = (slice(None),) * 2 + spec.input_window
    np.testing.assert_array_equal(canvas.values[window], e.result)
    inside = np.zeros(tuple(lo + n + hi for n, (lo, hi) in zip(spec.input_size, spec.padding)),
                      dtype=bool)
    inside[tuple(slice(lo, lo + n) for n, (lo, _) in zip(spec.input_size, spec.padding))] = True
    np.testing.assert_array_equal(canvas.cropped[0, 0], ~inside)
    # cells past (out - 1)*stride + K receive no copy
    beyond = canvas.kinds[0, 0] == "output_padding"
    assert not canvas.values[..., beyond].any()

    # the stretched, padded gradient: in + K - 1 cells per dim, zero except g's values
    padded = e.step("padding").panel("g stretched")
    assert padded.values.shape[2:] == tuple(n + k - 1 for n, k in zip(spec.input_size,
                                                                       spec.extents))
    assert not padded.values[padded.kinds != "data"].any()
    data = (padded.kinds == "data").sum()
    if all(lo >= 0 and hi >= 0 for lo, hi in spec.transpose_padding):
        assert data == g.size
        np.testing.assert_array_equal(np.sort(padded.values[padded.kinds == "data"]),
                                      np.sort(g.ravel()))

    # the kernel: flipped in every spatial dim, channels swapped per group
    kernel = e.step("kernel").panel("flipped, channels")
    assert kernel.values.shape == (spec.in_channels, spec.out_channels // spec.groups) + \
        spec.kernel_size
    flipped = e.step("kernel").panel("w flipped").values
    for tap in itertools.product(*map(range, spec.kernel_size)):
        back = tuple(k - 1 - t for k, t in zip(spec.kernel_size, tap))
        np.testing.assert_array_equal(flipped[(...,) + tap], w[(...,) + back])

    # the phases cover every cell of x once, and never do more work than zero insertion
    labels = e.step("phases").panel("dL/dx by phase").kinds[0, 0]
    assert all(label.startswith("phase") for label in labels.ravel()) or \
        e.step("phases").facts["phases"] < math.prod(spec.stride)
    facts = e.step("phases").facts
    assert facts["multiplies"] <= facts["dense_multiplies"]

    # the matrix: o = C x and dL/dx = C^T g, sample by sample
    m = e.step("matrix").facts
    assert m["forward_max_abs_diff"] == 0 and m["backward_max_abs_diff"] == 0
    assert m["dot_test"]["passed"]
    assert m["nnz"] <= spec.out_channels * spec.weight_shape[1] * math.prod(
        spec.output_size) * math.prod(spec.kernel_size)

    # the forward windows read prod(k) padded cells each
    reads = e.step("dropped").panel("windows reading").values
    assert reads.sum() == math.prod(spec.output_size) * math.prod(spec.kernel_size)


@settings(max_examples=25)
@given(spec=conv_specs(dims=(1, 2, 3), max_out=3, max_groups=2, symmetric=True),
       seed=st.integers(0, 2**16))
def test_explanation_result_equals_torch(spec, seed):
    """The dL/dx the explanation shows is torch's conv_transpose of the same g and w."""
    torch = _torch()
    x, w, g = arrays_for(spec, seed, np.float64)
    e = story.explain(spec, x, w, g)
    fn = getattr(torch.nn.functional, f"conv_transpose{spec.ndim}d")
    expected = fn(torch.tensor(g), torch.tensor(w), stride=spec.stride,
                  padding=spec.symmetric_padding, output_padding=spec.output_padding,
                  groups=spec.groups, dilation=spec.dilation).numpy()
    np.testing.assert_allclose(e.result, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(e.step("convolution").panel("dL/dx").values, expected,
                               rtol=1e-10, atol=1e-10)


def test_explain_rejects_wrong_data_shapes():
    with pytest.raises(ConvSpecError, match=r"g has shape \(1, 1, 3, 3\)"):
        story.explain(EXPERIMENT, g=np.zeros((1, 1, 3, 3)))
    with pytest.raises(ConvSpecError, match="x has shape"):
        story.explain(EXPERIMENT, x=np.zeros((1, 1, 5, 5)), w=np.zeros((1, 1, 3, 3)))


# -- the animation frames --------------------------------------------------------------------------

@settings(max_examples=30)
@given(spec=conv_specs(dims=(1, 2), max_out=3, max_groups=1, max_channels_per_group=1,
                       max_batch=1, max_dilation=2), seed=st.integers(0, 2**16))
def test_animation_frames_match_the_spec(spec, seed):
    assume(math.prod(spec.input_size) + math.prod(spec.output_size) <= MAX_FRAMES)
    _, w, g = arrays_for(spec, seed)
    a = animate(spec, g, w)
    scatter, sliding = a.view("scatter"), a.view("sliding")
    assert len(scatter) == math.prod(spec.output_size)       # one frame per g cell
    assert len(sliding) == math.prod(spec.input_size)        # one frame per x cell
    assert len(a.frames) == len(scatter) + len(sliding) + 3  # and three title frames
    taps = list(itertools.product(*map(range, spec.kernel_size)))
    for frame in scatter:
        # g[i] stamps g[i] * w at padded cells i*stride + j*dilation
        assert frame.taps == tuple(tuple(i * s + j * d for i, j, s, d in zip(
            frame.cell, tap, spec.stride, spec.dilation)) for tap in taps)
        np.testing.assert_array_equal(frame.stamp, g[(0, 0) + frame.cell] * w[0, 0])
        assert frame.window.sum() == len(taps)
    final = scatter[-1].canvas
    # the cropped region is exactly the forward padding
    assert a.scatter_cropped.sum() == final.size - math.prod(spec.input_size)
    assert not a.scatter_cropped[spec.input_window].any()
    np.testing.assert_array_equal(final[spec.input_window], transpose(g, w, spec)[0, 0])
    for frame in sliding:
        assert frame.taps == tuple(tuple(q + j * d for q, j, d in zip(
            frame.cell, tap, spec.dilation)) for tap in taps)
        done = np.zeros(spec.input_size, dtype=bool)
        done.ravel()[:np.ravel_multi_index(frame.cell, spec.input_size) + 1] = True
        assert not np.isnan(frame.result[done]).any() and np.isnan(frame.result[~done]).all()
        products = sum(a.flipped[tap] * frame.canvas[t] for tap, t in zip(taps, frame.taps))
        assert products == a.result[frame.cell]
    np.testing.assert_array_equal(sliding[-1].result, transpose(g, w, spec)[0, 0])
    assert a.sliding_canvas.shape == tuple(n + k - 1 for n, k in zip(spec.input_size,
                                                                       spec.extents))


def test_animation_refuses_3d_and_huge_specs():
    spec3 = ConvSpec.forward((1, 1, 3, 3, 3), (1, 1, 2, 2, 2))
    with pytest.raises(ConvSpecError, match="1-d and 2-d"):
        animate(spec3, np.zeros(spec3.output_shape), np.zeros(spec3.weight_shape))
    big = ConvSpec.forward((1, 1, 12, 12), (1, 1, 3, 3), stride=1, padding=1)
    with pytest.raises(ConvSpecError, match=f"more than {MAX_FRAMES}"):
        animate(big, np.zeros(big.output_shape), np.zeros(big.weight_shape))


# -- shape -----------------------------------------------------------------------------------------

def _each_choice(d):
    """The runs of ``d["choices"]`` one output_padding at a time: ``(op, size, forward size,
    collapses)``, sizes consecutive within a run."""
    for r in d["choices"]:
        first, last = r["output_padding"]
        for op in range(first, last + 1):
            if r["size"] is None:
                yield op, None, None, r["collapses"]
            else:
                yield op, r["size"][0] + op - first, None, r["collapses"]


@settings(max_examples=40)
@given(spec=conv_specs(max_groups=1))
def test_shape_facts_agree_with_convspec(spec):
    facts = story.shape_facts(spec)
    for dim, (d, n, k, s, p, dil, op) in enumerate(zip(
            facts["dims"], spec.input_size, spec.kernel_size, spec.stride, spec.padding,
            spec.dilation, spec.output_padding)):
        assert d["output"] == spec.output_size[dim]
        rows = list(_each_choice(d))
        assert [r[0] for r in rows] == list(range(max(s, dil)))
        assert [r[1] for r in rows if r[0] == op] == [n]
        assert [r["output_padding"] for r in d["choices"] if r["size"] == [n, n]] == [[op, op]]
        for choice, size, _, collapses in rows:
            formula = (d["output"] - 1) * s - p[0] - p[1] + dil * (k - 1) + 1 + choice
            assert size == (formula if formula >= 1 else None)
            assert collapses == (formula >= 1 and choice < s)
        for r in d["choices"]:
            if r["size"] is not None:   # forward sizes at both ends, by brute-force sliding
                assert r["forward_size"] == [
                    len(range(0, size + p[0] + p[1] - dil * (k - 1), s)) for size in r["size"]]
        sizes = {size for _, size, _, collapses in rows if collapses}
        assert sizes == {size for size, _ in spec.input_sizes()[dim] if size >= 1}
        first, last = d["input_sizes"]["first"], d["input_sizes"]["last"]
        assert set(range(first, last + 1)) == sizes      # empty when every size is cropped


@settings(max_examples=20)
@given(spec=conv_specs(max_groups=1, symmetric=True, max_out=3))
def test_shape_facts_agree_with_torch(spec):
    """conv_transpose with each valid output_padding gives the listed size, and the forward
    convolution of every collapsing size gives the spec's output size."""
    torch = _torch()
    F = torch.nn.functional
    nd = spec.ndim
    facts = story.shape_facts(spec)
    y = torch.zeros(spec.output_shape)
    w = torch.zeros(spec.weight_shape)
    for dim, d in enumerate(facts["dims"]):
        for r in d["choices"]:
            if r["size"] is None:
                continue
            for end in (0, 1):
                op = list(spec.output_padding)
                op[dim] = r["output_padding"][end]
                out = getattr(F, f"conv_transpose{nd}d")(y, w, stride=spec.stride,
                                                          padding=spec.symmetric_padding,
                                                          output_padding=op,
                                                          dilation=spec.dilation)
                assert out.shape[2 + dim] == r["size"][end]
                size = list(spec.input_size)
                size[dim] = r["size"][end]
                fwd = getattr(F, f"conv{nd}d")(torch.zeros((1, spec.in_channels) + tuple(size)),
                                               w, stride=spec.stride,
                                               padding=spec.symmetric_padding,
                                               dilation=spec.dilation)
                assert fwd.shape[2 + dim] == r["forward_size"][end]
                assert (fwd.shape[2 + dim] == d["output"]) == r["collapses"]


def test_shape_facts_of_a_huge_stride_are_ranges():
    """Stride 10**5: the 10**5 output_paddings are three runs, computed in O(1) (the facts
    listed them one by one, each through a ConvSpec: 18 s for the CLI at 10**4, gigabytes at
    10**9)."""
    spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=10**5, padding=1)
    d = story.shape_facts(spec)["dims"][0]
    assert d["choices"] == [
        {"output_padding": [0, 2], "size": [1, 3], "forward_size": [1, 1], "collapses": True},
        {"output_padding": [3, 3], "size": [4, 4], "forward_size": [1, 1], "collapses": True},
        {"output_padding": [4, 10**5 - 1], "size": [5, 10**5], "forward_size": [1, 1],
         "collapses": True}]
    assert d["input_sizes"] == {"first": 1, "last": 10**5, "output_padding": [0, 10**5 - 1]}
    huge = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=10**9, padding=1)
    assert story.shape_facts(huge)["dims"][1]["choices"][-1]["size"] == [5, 10**9]
    facts = story.explain(huge).step("dropped").facts
    assert facts["input_sizes"] == [[1, 10**9]] * 2
    assert facts["output_padding_choices"] == [[0, 10**9 - 1]] * 2


def test_explain_refuses_what_it_cannot_show():
    """Stride 10**7 and padding 4*10**6: two gradient cells 10**7 apart; the padded input has
    8*10**6 cells. The explanation names that array rather than drawing it."""
    spec = ConvSpec.forward((1, 1, 4), (1, 1, 3), stride=10**7, padding=4 * 10**6)
    with pytest.raises(ConvSpecError, match=r"the padded input of 1 x 8000004 = 8000004 cells, "
                                            r"more than 1048576"):
        story.explain(spec)


# -- overlap ---------------------------------------------------------------------------------------

@settings(max_examples=30)
@given(k=st.integers(1, 5), s=st.integers(1, 4), d=st.integers(1, 3), n=st.integers(1, 6),
       dims=st.sampled_from([1, 2]))
def test_overlap_sums_to_inputs_times_taps_and_matches_torch(k, s, d, n, dims):
    torch = _torch()
    ov = story.overlap(k, s, d, dims=dims, size=n)
    assert ov.counts.sum() == n ** dims * k ** dims
    fn = getattr(torch.nn.functional, f"conv_transpose{dims}d")
    ones = fn(torch.ones((1, 1) + (n,) * dims), torch.ones((1, 1) + (k,) * dims), stride=s,
              dilation=d)
    np.testing.assert_array_equal(ov.counts, ones[0, 0].numpy())


@pytest.mark.parametrize("k, s, even", [(3, 2, False), (4, 2, True), (2, 2, True), (5, 3, False),
                                        (6, 3, True), (3, 1, True), (1, 2, False)])
def test_overlap_is_even_iff_the_stride_divides_the_kernel(k, s, even):
    ov = story.overlap(k, s, dims=2)
    assert ov.even is even
    assert all(kernels == tuple(c for c in range(1, max(3 * s, k + s) + 1) if c % s == 0)
               for kernels in ov.even_kernels)
    assert ("uneven" in story.overlap_summary(ov)) is not even


def test_overlap_pattern_of_the_checkerboard():
    ov = story.overlap(3, 2, dims=1, size=5)
    assert ov.counts.tolist() == [1, 1, 2, 1, 2, 1, 2, 1, 2, 1, 1]
    assert ov.patterns == ((2, 1),)
    # dilation 2 with stride 2: odd cells get no tap whatever the kernel size
    assert story.overlap(3, 2, 2, dims=1).even_kernels == ((),)


def _period_by_scatter(k, s, d):
    """The middle ``s`` counts of the overlap of a ``K + 2``-cell input, by the naive scatter."""
    extent = d * (k - 1) + 1
    counts = reference_scatter_ones(extent + 2, k, s, d)
    start = (counts.size - s) // 2
    return tuple(int(c) for c in counts[start:start + s])


def reference_scatter_ones(n, k, s, d):
    line = np.zeros((n - 1) * s + d * (k - 1) + 1, dtype=int)
    for i in range(n):
        line[i * s + d * np.arange(k)] += 1
    return line


@settings(max_examples=60)
@given(k=st.integers(1, 9), s=st.integers(1, 7), d=st.integers(1, 5))
def test_overlap_period_and_even_kernels_against_the_scatter(k, s, d):
    """The period counted per residue and the even kernel sizes by the gcd rule agree with
    the counts of a long scatter of ones, kernel size by kernel size."""
    ov = story.overlap(k, s, d, dims=1, size=2)
    assert ov.patterns == (_period_by_scatter(k, s, d),)
    top = max(3 * s, k + s)
    assert ov.even_kernels == (tuple(c for c in range(1, top + 1)
                                     if len(set(_period_by_scatter(c, s, d))) == 1),)


def test_overlap_of_a_long_stride_and_a_huge_size():
    """Stride 1000 (70 s before: every candidate kernel by a scatter) is a period of 1000
    counts, told by its runs; a 2*10**6-cell map is refused, naming the sizes."""
    ov = story.overlap(3, 1000, dims=1)
    assert ov.patterns == ((0,) * 499 + (1,) * 3 + (0,) * 498,)
    assert ov.even_kernels == ((1000, 2000, 3000),)
    assert "repeat 0x499 1x3 0x498 (1000 counts)" in story.overlap_summary(ov)
    with pytest.raises(ConvSpecError, match=r"overlap map of input 1000000, kernel 3, stride 2, "
                                            r"dilation 1 would have 2000001 cells"):
        story.overlap(3, 2, dims=1, size=10**6)


# -- the matrix ------------------------------------------------------------------------------------

@settings(max_examples=25)
@given(spec=conv_specs(max_out=3, max_groups=2), seed=st.integers(0, 2**16))
def test_matrix_view_is_the_forward_convolution(spec, seed):
    x, w, y = arrays_for(spec, seed)
    view = story.matrix_view(spec, w)
    o = reference.conv(x, w, spec)
    for n in range(spec.batch):
        np.testing.assert_array_equal(view.c @ x[n].ravel(), o[n].ravel())
        np.testing.assert_array_equal(view.c.T @ y[n].ravel(), transpose(y, w, spec)[n].ravel())
    assert ((view.taps > 0) | (view.c == 0)).all()
    assert view.taps.max() <= math.prod(spec.kernel_size)
    assert view.dot.passed
