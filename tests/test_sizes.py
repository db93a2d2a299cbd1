"""Sizes at the edge: parameters beyond int64 are a ConvSpecError naming the parameter, and the
shape facts of huge strides and sizes are described, not listed."""
import numpy as np
import pytest

import tconv
from tconv import ConvSpec, ConvSpecError
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
    with pytest.raises(ConvSpecError, match=r"x shape .* is beyond int64.*stride 4611686018427387904"):
        tconv.conv_transpose(np.ones((1, 1, 3)), np.ones((1, 1, 1)), stride=2**62)
    with pytest.raises(ConvSpecError, match=r"padded input size 9223372036854775809 of spatial "
                                            r"dim 0 is beyond int64"):
        ConvSpec.forward((1, 1, 1), (1, 1, 1), padding=2**62, stride=2**62)
    # at the edge it still fits: one cell with the largest padding int64 allows on one side
    spec = ConvSpec.forward((1, 1, 1), (1, 1, 1), padding=((INT64_MAX - 1, 0),))
    assert spec.output_shape == (1, 1, INT64_MAX)
