"""Sizes at the edge: parameters beyond int64 are a ConvSpecError naming the parameter, and the
shape facts of huge strides and sizes are described, not listed."""
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import ConvSpec, ConvSpecError
from tconv.methods import polyphase
from tconv.strategies import conv_specs
INT64_MAX = 2**63 - 1

HUGE = 10**30


# -- beyond int64 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ("auto",) + tconv.METHODS)
@pytest.mark.parametrize("name", ["stride", "dilation", "padding", "output_padding"])
def test_a_parameter_beyond_int64_names_itself(method, name):
    with pytest.raises(ConvSpecError, match=rf"^{name}={HUGE} is beyond int64"):
        tconv.conv_transpose(np.ones((1, 1, 2)), np.ones((1, 1, 3)), method=method,
                             **{name: HUGE})


@pytest.mark.parametrize("name", ["stride", "dilation", "padding"])
def test_forward_and_gradients_name_the_parameter_beyond_int64(name):
    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 2))
    for call in (lambda: tconv.conv(x, w, **{name: HUGE}),
                 lambda: tconv.conv_input_grad(x.shape, w, np.ones((1, 1, 3)), **{name: HUGE}),
                 lambda: tconv.conv_weight_grad(x, w.shape, np.ones((1, 1, 3)), **{name: HUGE}),
                 lambda: ConvSpec.forward(x.shape, w.shape, **{name: HUGE})):
        with pytest.raises(ConvSpecError, match=rf"^{name}={HUGE} is beyond int64"):
            call()


def test_torch_rejects_the_same_parameters():
    """The reference framework refuses them too (its message is its own)."""
    import torch

    y, w = torch.ones((1, 1, 2)), torch.ones((1, 1, 3))
    for kw in (dict(stride=HUGE), dict(dilation=HUGE), dict(padding=HUGE)):
        with pytest.raises((RuntimeError, OverflowError, TypeError, ValueError)):
            torch.nn.functional.conv_transpose1d(y, w, **kw)


def test_output_size_groups_and_shapes_beyond_int64():
    y, w = np.ones((1, 1, 2)), np.ones((1, 1, 3))
    with pytest.raises(ConvSpecError, match=rf"^output_size={HUGE} is beyond int64"):
        tconv.conv_transpose(y, w, output_size=(HUGE,))
    with pytest.raises(ConvSpecError, match=rf"^groups={HUGE} is beyond int64"):
        tconv.conv_transpose(y, w, groups=HUGE)
    with pytest.raises(ConvSpecError, match=rf"^input shape={HUGE} is beyond int64"):
        ConvSpec.forward((1, 1, HUGE), (1, 1, 3))
    with pytest.raises(ConvSpecError, match=rf"^weight shape={HUGE} is beyond int64"):
        ConvSpec.transpose((1, 1, 3), (1, 1, HUGE))


def test_element_counts_and_derived_sizes_beyond_int64():
    """Each size fits, but their product, the transposed output or the padded input does not."""
    with pytest.raises(ConvSpecError, match=r"x shape .* \(1, 1, 1099511627776, 1099511627776\) "
                                            r"\(1208925819614629174706176 elements\) is beyond "
                                            r"int64"):
        tconv.conv_input_grad((1, 1, 2**40, 2**40), np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)))
    with pytest.raises(ConvSpecError,
                       match=r"x shape .* is beyond int64.*stride 4611686018427387904"):
        tconv.conv_transpose(np.ones((1, 1, 3)), np.ones((1, 1, 1)), stride=2**62)
    with pytest.raises(ConvSpecError, match=r"padded input size 9223372036854775809 of spatial "
                                            r"dim 0 is beyond int64"):
        ConvSpec.forward((1, 1, 1), (1, 1, 1), padding=2**62, stride=2**62)
    # at the edge it still fits: one cell with the largest padding int64 allows on one side
    spec = ConvSpec.forward((1, 1, 1), (1, 1, 1), padding=((INT64_MAX - 1, 0),))
    assert spec.output_shape == (1, 1, INT64_MAX)


# -- work proportional to the data, not to the stride ---------------------------------------------

def _brute_phases(spec, dim, tapless):
    """Every residue r of the stride, its taps and cells, by looping over all of them."""
    s, d, k = spec.stride[dim], spec.dilation[dim], spec.kernel_size[dim]
    lo, size = spec.padding[dim][0], spec.input_size[dim]
    found = []
    for r in range(s):
        taps = tuple(j for j in range(k) if j * d % s == r)
        cells = [q for q in range(size) if (q + lo) % s == r]
        if cells and (taps or tapless):
            found.append((taps, cells[0], len(cells)))
    return found


@settings(max_examples=200)
@given(spec=conv_specs(max_stride=7, max_kernel=6, max_dilation=5), tapless=st.booleans())
def test_phases_are_the_residues_with_taps_and_cells(spec, tapless):
    for dim in range(spec.ndim):
        got = [(tuple(ph.taps), ph.start, ph.count)
               for ph in polyphase.phases(spec, dim, tapless=tapless)]
        assert got == _brute_phases(spec, dim, tapless)


@pytest.mark.parametrize("method", ["auto", "polyphase", "fast_polyphase", "fast_polyphase_cf"])
def test_a_huge_stride_costs_memory_of_the_data_only(method):
    """Stride 10**6: the polyphase methods visit the two phases the taps reach, not 10**6 of
    them (they did, holding a Phase per residue: hundreds of MB and 11 s per call)."""
    import torch

    y, w = np.array([[[1.0, 2.0]]]), np.array([[[3.0, 5.0]]])
    tracemalloc.start()
    try:
        x = tconv.conv_transpose(y, w, stride=10**6, method=method)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = torch.nn.functional.conv_transpose1d(torch.tensor(y), torch.tensor(w),
                                                    stride=10**6).numpy()
    np.testing.assert_array_equal(x, expected)
    assert peak <= 4 * x.nbytes + 2**20
    spec = ConvSpec.transpose((1, 1, 2, 3), (1, 1, 2, 2), stride=(10**6, 10**9))
    assert [len(polyphase.phases(spec, dim)) for dim in range(2)] == [2, 2]
    assert polyphase.largest(spec) == (1, 2 * 3, 2 * 3)   # 1 tap, cells and gradient 2x3


def test_input_sizes_of_a_huge_stride_is_a_range():
    """input_sizes() listed stride pairs per dim (gigabytes for a stride of 10**9): now a
    SizeRange held by its ends, still a sequence of the same (size, output_padding) pairs."""
    tracemalloc.start()
    try:
        spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=10**6, padding=1)
        sizes = spec.input_sizes()[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**16
    assert (sizes.first, sizes.last, len(sizes)) == (1, 10**6, 10**6)
    assert sizes[0] == (1, 0) and sizes[-1] == (10**6, 10**6 - 1) and sizes[3] == (4, 3)
    assert sizes.output_padding(4) == spec.output_padding[0] == 3
    small = ConvSpec.forward((1, 1, 4), (1, 1, 3), stride=2, padding=1).input_sizes()
    assert small == (((3, 0), (4, 1)),) and list(small[0]) == [(3, 0), (4, 1)]
