"""Fuzz: random parameters, valid and invalid alike. Every call returns exactly the shape
ConvSpec predicts, or raises ConvSpecError — never another exception."""
import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

import tconv
from tconv import ConvSpec, ConvSpecError


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
        method=draw(st.sampled_from(("auto",) + tconv.METHODS)))


def _predicted(build):
    try:
        return build()
    except ConvSpecError:
        return None


def _check(call, expected_shape):
    event("valid" if expected_shape is not None else "invalid")
    try:
        result = call()
    except ConvSpecError:
        assert expected_shape is None, "ConvSpecError although ConvSpec accepts the parameters"
        return
    assert expected_shape is not None, "a result although ConvSpec rejects the parameters"
    assert result.shape == expected_shape


@settings(max_examples=400)
@given(p=raw_parameters())
def test_conv_transpose_shape_or_spec_error(p):
    y = np.ones((p["batch"], p["c_in"]) + p["size"])
    w = np.ones((p["c_in"], p["w_in"]) + p["kernel"])
    kw = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])
    spec = _predicted(lambda: ConvSpec.transpose(y.shape, w.shape, output_padding=p["output_padding"], **kw))
    _check(lambda: tconv.conv_transpose(y, w, output_padding=p["output_padding"],
                                        method=p["method"], **kw),
           spec and spec.input_shape)


@settings(max_examples=400)
@given(p=raw_parameters())
def test_conv_and_gradients_shape_or_spec_error(p):
    x = np.ones((p["batch"], p["c_in"]) + p["size"])
    w = np.ones((p["c_out"], p["w_in"]) + p["kernel"])
    kw = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])
    spec = _predicted(lambda: ConvSpec.forward(x.shape, w.shape, **kw))
    _check(lambda: tconv.conv(x, w, **kw), spec and spec.output_shape)
    g = np.ones(spec.output_shape) if spec else np.ones((1, 1, 1))
    _check(lambda: tconv.conv_input_grad(x.shape, w, g, method=p["method"], **kw),
           spec and spec.input_shape)
    _check(lambda: tconv.conv_weight_grad(x, w.shape, g, **kw), spec and spec.weight_shape)
