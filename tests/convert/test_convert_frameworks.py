"""tconv.convert against the real frameworks: random layers drawn in each framework's own words.

For every drawn layer the test runs the framework itself (through the runners below, written from
the frameworks' APIs, not from tconv's code generator), checks that tconv read it right (the
output equals tconv's transposed convolution of the canonical spec), converts it to every other
framework, runs the target with the transformed weight, applies the crop with tconv's own
``pad_or_crop``, and requires the same numbers. A target that cannot express the layer must say
so for one of the documented reasons, and only then.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tconv import convert, frameworks
from tconv.convert.layout import Layout, inverse
from tconv._arrays import pad_or_crop
from tconv.ops import conv_transpose
from tconv.spec import ConvSpecError
from tconv.verify import error_bound

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXAMPLES = int(os.environ.get("TCONV_CONVERT_EXAMPLES", "10"))
#: TCONV_CONVERT_EXAMPLES=200 TCONV_CONVERT_RANDOM=1 explores new layers; by default the draws
#: are fixed (and few: every example runs six frameworks).
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    derandomize=os.environ.get("TCONV_CONVERT_RANDOM") is None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# -- running each framework directly --------------------------------------------------------------

def run_torch(args, x, w):
    torch = pytest.importorskip("torch")
    nd = len(args["input_shape"]) - 2
    kwargs = {k: v for k, v in args.items()
              if k not in ("input_shape", "output_size", "bias") and v is not None}
    module = getattr(torch.nn, f"ConvTranspose{nd}d")(**kwargs, bias=False)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(w))
        return module(torch.from_numpy(x), output_size=args.get("output_size")).numpy()


def run_tf(args, x, w):
    pytest.importorskip("tensorflow")
    from tconv.frameworks.tensorflow import import_tf
    tf = import_tf()
    shape = args.get("output_shape")
    if shape is None:
        pytest.fail("the drawn TF layers always give output_shape")
    return tf.nn.conv_transpose(x, w, shape, args.get("strides", 1), args.get("padding", "SAME"),
                                data_format=args.get("data_format"),
                                dilations=args.get("dilations")).numpy()


def run_keras(args, x, w):
    pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    nd = len(args["input_shape"]) - 2
    kwargs = {k: v for k, v in args.items() if k not in ("input_shape", "use_bias")}
    layer = getattr(keras.layers, f"Conv{nd}DTranspose")(**kwargs, use_bias=False)
    layer.build(x.shape)
    layer.set_weights([w])
    return np.asarray(layer(x))


def run_jax(args, x, w):
    lax = pytest.importorskip("jax").lax
    kwargs = {k: v for k, v in args.items() if k not in ("lhs_shape", "rhs_shape")}
    if "lhs_dilation" in kwargs:
        return np.asarray(lax.conv_general_dilated(x, w, **kwargs))
    return np.asarray(lax.conv_transpose(x, w, **kwargs))


def run_flax(args, x, w):
    """flax.linen.ConvTranspose itself, with the kernel as its only parameter."""
    linen = pytest.importorskip("flax.linen")
    kwargs = {k: v for k, v in args.items() if k not in ("input_shape", "use_bias")}
    layer = linen.ConvTranspose(**kwargs, use_bias=False)
    return np.asarray(layer.apply({"params": {"kernel": w}}, x))


def run_onnx(args, x, w):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    attrs = {k: v for k, v in args.items()
             if k not in ("x_shape", "w_shape", "b_shape") and v is not None}
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **attrs)
    graph = helper.make_graph([node], "t", [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape)),
        helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x, "W": w})[0]


RUN = {"torch": run_torch, "tensorflow": run_tf, "keras": run_keras, "jax": run_jax, "flax": run_flax,
       "onnx": run_onnx}


def cannot_express(spec, target):
    """The documented reasons a target has no layer for a spec (tconv's 1-3 dims are drawn)."""
    if spec.groups > 1 and target in ("tensorflow", "keras", "flax"):
        return "has no groups"
    if target == "keras" and max(spec.stride) > 1 and max(spec.dilation) > 1:
        return "refuses strides > 1 together with dilation_rate > 1"
    return None


def cpu_cannot_run(spec, target):
    """TensorFlow's CPU input-gradient kernel has no dilation (tensorflow#69103)."""
    return target in ("tensorflow", "keras") and max(spec.dilation) > 1


# -- the property ---------------------------------------------------------------------------------

def check_layer(source, args, seed=0):
    """Run ``args`` in ``source``; it must be readable exactly when the framework accepts it, then
    equal tconv and every target (weights transformed, crop applied) as the conversion says."""
    rng = np.random.default_rng(seed)
    try:
        layer = convert.read(source, **args)
    except ConvSpecError:
        layer = None
    x_shape = args[frameworks.get(source).shape_args[0]]
    if layer is None:            # tconv refuses: the framework must refuse too, or return nothing
        w_shape = _weight_shape_guess(source, args)
        try:
            out = RUN[source](args, rng.standard_normal(x_shape).astype(np.float32),
                              rng.standard_normal(w_shape).astype(np.float32))
        except Exception:
            out = np.zeros(0)
        assert out.size == 0, f"{source} runs {args}, but tconv refuses it"
        assume(False)
    spec = layer.spec
    y = rng.standard_normal(spec.output_shape).astype(np.float32)
    w = rng.standard_normal(spec.weight_shape).astype(np.float32)
    w_source = convert.WeightTransform.between(Layout.plain(spec.ndim), layer.layout,
                                               spec.groups).apply(w)
    assert tuple(layer.input_shape) == tuple(x_shape)
    exact = conv_transpose(y.astype(np.float64), w.astype(np.float64), stride=spec.stride,
                           padding=spec.padding, output_padding=spec.output_padding,
                           dilation=spec.dilation, groups=spec.groups)
    bound = error_bound(y, w, spec, exact, np.float32)
    # zero cells the layer adds past the transposed convolution (padding wider than the kernel)
    exact, bound = pad_or_crop(exact, layer.outer), pad_or_crop(bound, layer.outer)
    native = RUN[source](args, np.transpose(y, layer.layout.data), w_source)
    native = np.transpose(native, inverse(layout_out(layer)))
    assert native.shape == exact.shape
    assert np.all(np.abs(native - exact) <= bound), f"{source} read wrong: {layer.spec.describe()}"
    for target in RUN:            # LiteRT writes Keras' layer: its runs are in test_objects
        why = cannot_express(spec, target)
        if why:
            with pytest.raises(ConvSpecError, match=why):
                convert.convert(layer, target)
            continue
        conversion = convert.convert(layer, target)
        assert conversion.target.spec.ndim == spec.ndim
        if cpu_cannot_run(spec, target):
            assert "tensorflow#69103" in convert.check(conversion).reason
            continue
        out = RUN[target](conversion.target.args,
                          np.transpose(y, conversion.target.layout.data),
                          conversion.weight_transform.apply(w_source))
        out = np.transpose(out, inverse(conversion.target.layout.output))
        out = pad_or_crop(out, [(-lo, -hi) for lo, hi in conversion.crop])
        assert out.shape == native.shape, (source, target, conversion.to_dict())
        assert np.all(np.abs(out - exact) <= bound), (source, target, conversion.to_dict())
        assert np.abs(out - native).max() <= 2 * bound.max()
        round_trip(layer, conversion)


def layout_out(layer):
    return layer.layout.output


def round_trip(layer, conversion):
    """A -> B -> A: where B needs no crop, reading B back and converting it to A gives the
    original spec exactly, with no crop either."""
    if not conversion.exact:
        return
    back_b = convert.read(conversion.target.framework, **conversion.target.args)
    assert back_b.spec == layer.spec
    again = convert.convert(back_b, layer.framework)
    assert again.exact and again.target.spec == layer.spec


def _weight_shape_guess(source, args):
    """The weight the framework expects, for the run that must fail (only shapes matter)."""
    if source == "torch":
        nd = len(args["input_shape"]) - 2
        return (args["in_channels"], args["out_channels"] // args["groups"],
                *_tuple(args["kernel_size"], nd))
    if source == "keras":
        nd = len(args["input_shape"]) - 2
        return (*_tuple(args["kernel_size"], nd), args["filters"], args["input_shape"][-1])
    if source == "flax":
        nd = len(args["input_shape"]) - 2
        return (*_tuple(args["kernel_size"], nd), args["input_shape"][-1], args["features"])
    return args[frameworks.get(source).shape_args[1]]


def _tuple(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


# -- the draws, in each framework's own words -----------------------------------------------------

def per_dim(draw, nd, lo, hi):
    return tuple(draw(st.integers(lo, hi)) for _ in range(nd))


@st.composite
def torch_layers(draw):
    nd = draw(st.sampled_from([1, 2]))
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    size, k = per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 4)
    stride, dilation = per_dim(draw, nd, 1, 3), per_dim(draw, nd, 1, 2)
    padding = per_dim(draw, nd, 0, 3)
    op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    full = [(o - 1) * s + d * (kk - 1) + 1 for o, s, d, kk in zip(size, stride, dilation, k)]
    assume(all(f - 2 * p + o >= 1 for f, p, o in zip(full, padding, op)))
    args = dict(input_shape=(1, c_in, *size), in_channels=c_in, out_channels=c_out,
                kernel_size=k, stride=stride, padding=padding, groups=groups, dilation=dilation)
    if draw(st.booleans()) and all(o < s for o, s in zip(op, stride)):
        args["output_size"] = [f - 2 * p + o for f, p, o in zip(full, padding, op)]
    else:
        args["output_padding"] = op
    return args


@st.composite
def tf_layers(draw):
    """tf.nn.conv_transpose on CPU: NHWC, no dilation (tensorflow#69103), output_shape one of the
    sizes TF accepts for the drawn padding."""
    nd = draw(st.sampled_from([1, 2]))
    c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    size, k, stride = per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 3)
    modes = ["SAME", "VALID"] + (["EXPLICIT"] if nd == 2 else [])
    mode = draw(st.sampled_from(modes))
    out, pairs = [], []
    for o, kk, s in zip(size, k, stride):
        full = (o - 1) * s + kk
        if mode == "SAME":
            out.append(draw(st.integers((o - 1) * s + 1, o * s)))
        else:
            pair = (draw(st.integers(0, 2)), draw(st.integers(0, 2))) if mode == "EXPLICIT" else (
                0, 0)
            least = full - sum(pair)
            assume(least + s - 1 >= 1)
            out.append(draw(st.integers(max(least, 1), least + s - 1)))
            pairs.append(list(pair))
    padding = [[0, 0], *pairs, [0, 0]] if mode == "EXPLICIT" else mode
    return dict(input_shape=(1, *size, c_in), filters_shape=(*k, c_out, c_in),
                output_shape=[1, *out, c_out], strides=list(stride), padding=padding)


@st.composite
def keras_layers(draw):
    nd = draw(st.sampled_from([1, 2]))
    c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    size, k, stride = per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 3)
    op = None if draw(st.booleans()) else tuple(draw(st.integers(0, s - 1)) for s in stride)
    return dict(input_shape=(1, *size, c_in), filters=c_out, kernel_size=k, strides=stride,
                padding=draw(st.sampled_from(["same", "valid"])), output_padding=op)


@st.composite
def jax_layers(draw):
    """lax.conv_transpose (strings, transposed pairs, consistent pairs; either kernel convention)
    or the lhs-dilated lax.conv_general_dilated with groups."""
    nd = draw(st.sampled_from([1, 2]))
    size, k = per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 3)
    stride, dilation = per_dim(draw, nd, 1, 3), per_dim(draw, nd, 1, 2)
    if draw(st.booleans()):
        groups = draw(st.integers(1, 2))
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
        pairs = tuple((draw(st.integers(-1, 4)), draw(st.integers(-1, 4))) for _ in range(nd))
        return dict(lhs_shape=(1, c_in, *size), rhs_shape=(c_out, c_in // groups, *k),
                    window_strides=(1,) * nd, padding=pairs, lhs_dilation=stride,
                    rhs_dilation=dilation, feature_group_count=groups)
    c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    transpose_kernel = draw(st.booleans())
    consistent = draw(st.booleans())
    padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), st.tuples(*[
        st.tuples(st.integers(-1, 4), st.integers(-1, 4)) for _ in range(nd)])))
    rhs = (*k, c_out, c_in) if transpose_kernel else (*k, c_in, c_out)
    return dict(lhs_shape=(1, *size, c_in), rhs_shape=rhs, strides=stride, padding=padding,
                rhs_dilation=dilation, transpose_kernel=transpose_kernel,
                use_consistent_padding=consistent)


@st.composite
def flax_layers(draw):
    nd = draw(st.sampled_from([1, 2]))
    c_in, c_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    size, k = per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 3)
    stride, dilation = per_dim(draw, nd, 1, 3), per_dim(draw, nd, 1, 2)
    padding = draw(st.one_of(st.sampled_from(["SAME", "VALID"]), st.integers(0, 3),
                             st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                                      min_size=nd, max_size=nd)))
    return dict(input_shape=(1, *size, c_in), features=c_out, kernel_size=k, strides=stride,
                padding=padding, kernel_dilation=dilation,
                transpose_kernel=draw(st.booleans()))


@st.composite
def onnx_layers(draw):
    nd = draw(st.sampled_from([1, 2]))
    group = draw(st.integers(1, 2))
    c_in, c_out = group * draw(st.integers(1, 2)), group * draw(st.integers(1, 2))
    size, k = per_dim(draw, nd, 1, 4), per_dim(draw, nd, 1, 4)
    stride, dilation = per_dim(draw, nd, 1, 3), per_dim(draw, nd, 1, 2)
    op = [draw(st.integers(0, s - 1)) for s in stride]
    args = dict(x_shape=(1, c_in, *size), w_shape=(c_in, c_out // group, *k), group=group,
                strides=list(stride), dilations=list(dilation), output_padding=op)
    mode = draw(st.sampled_from(["pads", "SAME_UPPER", "SAME_LOWER", "VALID", "output_shape"]))
    full = [(o - 1) * s + d * (kk - 1) + 1 for o, s, d, kk in zip(size, stride, dilation, k)]
    if mode == "pads":
        args["pads"] = [draw(st.integers(0, 2)) for _ in range(2 * nd)]
        assume(all(f + o - args["pads"][i] - args["pads"][i + nd] >= 1
                   for i, (f, o) in enumerate(zip(full, op))))
    elif mode == "output_shape":
        args["output_shape"] = [draw(st.integers(max(f + o - 3, 1), f + o))
                                for f, o in zip(full, op)]
    else:
        args["auto_pad"] = mode
        assume(mode == "VALID" or all(f + o >= o_ * s for f, o, o_, s in
                                      zip(full, op, size, stride)))
    return args


STRATEGIES = {"torch": torch_layers(), "tensorflow": tf_layers(), "keras": keras_layers(),
              "jax": jax_layers(), "flax": flax_layers(), "onnx": onnx_layers()}
PACKAGES = {"torch": "torch", "tensorflow": "tensorflow", "keras": "keras", "jax": "jax",
            "flax": "flax", "onnx": "onnxruntime"}


@pytest.mark.parametrize("source", STRATEGIES)
def test_random_layers_convert_exactly_to_every_framework(source):
    """Each drawn layer equals tconv and every target, in the real frameworks."""
    for package in ("torch", "tensorflow", "keras", "jax", "flax", "onnx", "onnxruntime"):
        pytest.importorskip(package)

    @SETTINGS
    @given(STRATEGIES[source])
    def prop(args):
        check_layer(source, args)

    prop()
