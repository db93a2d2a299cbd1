"""tconv against LiteRT: TRANSPOSE_CONV / CONV_3D_TRANSPOSE converted from a TF function and run
by ai_edge_litert's interpreter, compared with exact arithmetic through verify."""
import numpy as np
import pytest

from tconv import exact
from tconv.frameworks import NotExpressible, get
from tconv.frameworks import litert as litert_module

litert_backend = get("litert")
from tconv.spec import ConvSpec
from tconv.strategies import arrays_for
from tconv.verify import verify

pytest.importorskip("ai_edge_litert")
pytest.importorskip("tensorflow")

BUILTIN, CROP, FLEX = litert_backend.way_names(2)


def _rows(spec, seed=5):
    _, w, g = (a.astype(np.float32) for a in arrays_for(spec, seed))
    return {r.name: r for r in verify(spec, w, g, methods=(), backends=("litert",)).rows}


@pytest.mark.parametrize("spec", [
    ConvSpec.forward((1, 2, 8, 8), (3, 2, 3, 3), stride=2, padding="same"),   # 'SAME', 2-d
    ConvSpec.forward((2, 1, 7), (2, 1, 3), stride=2, padding="valid"),        # 'VALID', 1-d
    ConvSpec.forward((1, 1, 4, 4, 4), (2, 1, 2, 2, 2), stride=2, padding="same"),  # 3-d
], ids=["same-2d", "valid-1d", "same-3d"])
def test_builtin_same_and_valid_equal_exact(spec):
    rows = _rows(spec)
    assert rows[BUILTIN].status == "PASS" and rows[CROP].status == "PASS"


def test_explicit_padding_runs_as_valid_plus_crop_and_needs_flex_otherwise():
    """PyTorch's padding 1 with output_padding 1 (the original experiment) is neither 'SAME' nor
    'VALID': the builtin way is N/A, the VALID + crop way passes, and the explicit-padding model
    converts only with Select TF ops, which the interpreter does not link (TICO #420)."""
    spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
    rows = _rows(spec)
    assert rows[BUILTIN].status == "N/A" and "Flex" in rows[BUILTIN].note
    assert rows[CROP].status == "PASS"
    assert rows[FLEX].status == "N/A" and "does not link the Flex delegate" in rows[FLEX].note


def test_builtins_only_refuse_explicit_padding():
    """Converting the explicit-padding model with builtin ops only fails in the converter, which
    names the op it cannot lower: Conv2DBackpropInput."""
    spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
    w = np.ones(spec.weight_shape, np.float32)
    refused = litert_module._convert(spec, w, [[0, 0], [1, 1], [1, 1], [0, 0]],
                                      spec.input_size, None, flex=False)
    assert "Conv2DBackpropInput" in refused.reason


def test_not_expressible_reasons():
    """Groups, dilation, output_padding >= stride and non-float32 data, each with its reason."""
    for spec, word in (
            (ConvSpec.transpose((1, 2, 3), (2, 1, 3), groups=2), "groups"),
            (ConvSpec.transpose((1, 1, 3), (1, 1, 2), stride=2, dilation=2), "dilation"),
            (ConvSpec.transpose((1, 1, 3), (1, 1, 2), dilation=3, output_padding=2),
             "output_padding")):
        _, w, g = (a.astype(np.float32) for a in arrays_for(spec, 0))
        ways = litert_backend.input_grad_ways(spec, w, g)
        for name in (BUILTIN, CROP):
            assert isinstance(ways[name], NotExpressible) and word in ways[name].reason, name
    spec = ConvSpec.transpose((1, 1, 3), (1, 1, 2), stride=2)
    _, w, g = arrays_for(spec, 0, np.float64)
    assert all(isinstance(v, NotExpressible) and "float32" in v.reason
               for v in litert_backend.input_grad_ways(spec, w, g).values())


def test_valid_with_kernel_smaller_than_stride_is_exact():
    """k = 1 < stride 3: the VALID + crop way keeps x's window of the longer 'VALID' result."""
    spec = ConvSpec.transpose((1, 1, 3, 2), (1, 1, 1, 2), stride=3, output_padding=(2, 1))
    _, w, g = (a.astype(np.float32) for a in arrays_for(spec, 9))
    got = litert_backend.input_grad_ways(spec, w, g)[CROP]
    np.testing.assert_array_equal(got, exact.conv_transpose(g, w, spec))
