"""Real layers in, ready layers out: a framework's layer object, weights and bias included,
converted to a working object of another framework, and both run to compare.

The parameters are :func:`tconv.convert.convert`'s business; this module moves the arrays and
runs the objects. Each framework reads its own layer objects (``read_layer``: the
:class:`~tconv.convert.Layer`, the weight in its own layout, the bias and a way to run the
object) and builds its own (``build_layer``: the target layer with the weight and bias set, the
crop or zero padding included); this module knows no framework.

Zero cells a layer adds past its transposed convolution (a crop's negative side, an
``output_padding`` or padding wider than the kernel) carry the bias in every framework, since
each adds its bias to every output cell; a target that adds the zeros itself adds the bias
after them.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._arrays import pad_or_crop
from ..spec import ConvSpecError
from .layer import Layer
from .layout import Layout, WeightTransform, inverse, permuted


@dataclass(frozen=True)
class LayerRead:
    """A layer object as its framework holds it.

    Attributes
    ----------
    layer : Layer
        Its parameters in tconv's terms.
    weight : ndarray
        The weight in the framework's own layout (``layer.layout.weight``).
    bias : ndarray or None
        ``(C_out,)``, added to every output cell.
    run : callable
        ``run(x) -> y``: the object itself, on NumPy data in its own layout.
    notes : tuple of str
        What the object does that the conversion leaves out (an activation).
    """

    layer: Layer
    weight: np.ndarray
    bias: np.ndarray | None
    run: Callable[[np.ndarray], np.ndarray]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Built:
    """A target object ready to run: ``obj`` (with ``params`` where the framework keeps them
    apart, as Flax does), and ``run(x) -> y`` on NumPy data in its layout."""

    obj: object
    run: Callable[[np.ndarray], np.ndarray]
    params: object = None


@dataclass(frozen=True)
class LayerCheck:
    """Both objects run on the same random data and compared with tconv's exact result.

    ``passed``: both within the float32 rounding bound of the float64 result (plus the bias)
    cell by cell. ``max_diff`` = ``max |source - target|``; ``source_error`` and
    ``target_error`` = ``max |result - tconv|``; ``reason``: why a side did not run.
    """

    passed: bool
    max_diff: float | None = None
    source_error: float | None = None
    target_error: float | None = None
    bound: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        if self.reason:
            return f"NOT RUN: {self.reason}"
        return (f"{'PASS' if self.passed else 'FAIL'}: max |source - target| "
                f"{self.max_diff:.3g}, against tconv {self.source_error:.3g} and "
                f"{self.target_error:.3g} (bound {self.bound:.3g})")


@dataclass(frozen=True)
class LayerConversion:
    """The converted layer: ``target`` (call it, or ``run``), its weights, shapes and layouts.

    ``input_shape`` and ``output_shape`` are the target's, in its layouts ``input_format`` and
    ``output_format``; the source takes ``source_input_shape`` in ``source_input_format``.
    ``conversion`` holds the parameters (target call, weight transform, crop).
    """

    conversion: object
    target: object
    params: object
    weight: np.ndarray
    bias: np.ndarray | None
    run: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    source_run: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    check: LayerCheck | None = None
    notes: tuple[str, ...] = ()
    #: the source's weight, in its layout
    source_weight: np.ndarray | None = field(default=None, repr=False)

    def __call__(self, x):
        return self.run(x)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.conversion.target.input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.conversion.output_shape

    @property
    def input_format(self) -> str:
        return self.conversion.target.data_format

    @property
    def output_format(self) -> str:
        return self.conversion.target.layout.output_name

    @property
    def source_input_shape(self) -> tuple[int, ...]:
        return self.conversion.source.input_shape

    @property
    def source_input_format(self) -> str:
        return self.conversion.source.data_format

    def describe(self) -> str:
        """Two lines: source -> target with their shapes, and the check."""
        c = self.conversion
        text = (f"{c.source.describe()} -> {c.target.describe()}"
                + ("" if c.exact else f" + crop {[list(x) for x in c.crop]}")
                + f"; input {self.input_shape} {self.input_format} -> output "
                f"{self.output_shape} {self.output_format}")
        if self.check is not None:
            text += f"\ncheck: {self.check.summary()}"
        return text

    def to_dict(self) -> dict:
        data = self.conversion.to_dict()
        data["bias"] = self.bias is not None
        data["notes"] = list(data["notes"]) + list(self.notes)
        data["check"] = None if self.check is None else self.check.to_dict()
        return data


def built_from_code(layer: Layer, conversion, w, b) -> Built:
    """Run the code tconv prints for ``layer`` (the target of ``conversion``, or the layer
    itself when ``conversion`` is None) with the source's weight ``w`` and bias ``b``."""
    from ..frameworks import get
    from .code import render

    transform = (WeightTransform.identity(layer.spec.ndim) if conversion is None
                 else conversion.weight_transform)
    code = render(layer, transform, conversion, runnable=True)
    get(layer.framework).prepare()
    namespace = {"w": w, "b": b}
    with contextlib.redirect_stdout(io.StringIO()):    # what converters print as they go
        exec(compile(code, f"<tconv convert: {layer.call}>", "exec"), namespace)
    return Built(namespace["layer"], namespace["forward"], namespace.get("variables"))


def _framework_of(obj, source: str | None):
    from ..frameworks import owner

    framework = owner(obj, source, "reads_object")
    if framework is not None:
        return framework
    raise ConvSpecError(
        f"tconv reads no layer of type {type(obj).__module__}.{type(obj).__qualname__}: give "
        f"a torch nn.ConvTransposeNd, a Keras ConvNDTranspose, a Flax linen or NNX "
        f"ConvTranspose, an ONNX ConvTranspose node, or a TF filter with source='tensorflow'",
        "obj")


def read_layer(obj, *, source: str | None = None, **args) -> LayerRead:
    """The :class:`LayerRead` of a framework's layer object (the framework found from its type,
    or ``source``); ``args`` are what the object does not know (``input_shape``, ...)."""
    framework = _framework_of(obj, source)
    return framework.read_layer(obj, **args)


def layer(obj, to: str, *, source: str | None = None, check: bool = True, seed: int = 0,
          transpose_kernel: bool = False, use_consistent_padding: bool = False,
          zero_dilated_kernel: bool = False, **args) -> LayerConversion:
    """Convert a real layer, weights and bias included, to a ready object of ``to``.

    Parameters
    ----------
    obj
        A ``torch.nn.ConvTranspose{1,2,3}d``; a built Keras 3 ``Conv{1,2,3}DTranspose``; a Flax
        ``linen.ConvTranspose`` (with ``params=`` its variables) or ``nnx.ConvTranspose``; an
        ONNX ``ConvTranspose`` node (with ``initializers=``) or a model holding one; or the
        filter of ``tf.nn.conv_transpose`` with ``source="tensorflow"`` and its arguments.
    to : str
        The target framework: torch, tensorflow, keras, jax, flax, onnx or litert.
    check : bool
        Run both objects on random data and compare them with tconv's exact result.
    transpose_kernel, use_consistent_padding, zero_dilated_kernel : bool
        Options of :func:`tconv.convert.convert`.
    **args
        What the object does not know: ``input_shape`` (the layer's input, in its layout; the
        spatial sizes alone do with a batch of 1), torch's ``output_size``, the TF op's
        arguments, ...

    Returns
    -------
    LayerConversion
        ``result.target`` is the object (``result.params`` its Flax variables), ``result(x)``
        runs it on data in ``result.input_format``.

    Examples
    --------
    >>> import torch
    >>> from tconv import convert
    >>> up = torch.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    >>> result = convert.layer(up, to="onnx", input_shape=(8, 8))
    >>> result.input_shape, result.output_shape, result.check.passed
    ((1, 4, 8, 8), (1, 2, 16, 16), True)
    """
    read = read_layer(obj, source=source, **args)
    return convert_read(read, to, check=check, seed=seed, transpose_kernel=transpose_kernel,
                        use_consistent_padding=use_consistent_padding,
                        zero_dilated_kernel=zero_dilated_kernel)


def convert_read(read: LayerRead, to: str, *, check: bool = True, seed: int = 0,
                 **options) -> LayerConversion:
    """:func:`layer` for a layer already read (``options``: those of
    :func:`tconv.convert.convert`)."""
    from . import convert
    from ..frameworks import get

    conversion = convert(read.layer, to, **options)
    weight = conversion.weight_transform.apply(read.weight)
    bias = None if read.bias is None else np.array(read.bias, copy=True)
    built = get(conversion.target.framework).build_layer(conversion, read.weight, bias)
    outcome = check_objects(read, conversion, built.run, seed=seed) if check else None
    notes = read.notes
    return LayerConversion(conversion, built.obj, built.params, weight, bias, built.run,
                           read.run, outcome, notes, read.weight)


def exact_output(read: LayerRead, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tconv's float64 result of the layer ``read`` on ``y`` (tconv's layout), bias and added
    zeros included, and the float32 rounding bound of each cell."""
    from ..ops import transpose
    from ..verify import error_bound

    layer = read.layer
    spec = layer.spec
    w = WeightTransform.between(layer.layout, Layout.plain(spec.ndim),
                                spec.groups).apply(read.weight).astype(np.float32)
    exact = transpose(y.astype(np.float64), w.astype(np.float64), spec, "gemm")
    bound = error_bound(y, w, spec, exact, np.float32)
    exact, bound = (pad_or_crop(a, layer.outer) for a in (exact, bound))
    if read.bias is not None:
        shape = (1, -1) + (1,) * spec.ndim
        exact = exact + np.asarray(read.bias, np.float64).reshape(shape)
        bound = bound + np.finfo(np.float32).eps * np.abs(exact)    # the one more rounding
    return exact, bound


def check_objects(read: LayerRead, conversion, run_target, *, seed: int = 0) -> LayerCheck:
    """Run the source object and the target on the same random float32 data (each in its own
    layout) and compare both with :func:`exact_output`."""
    from ..frameworks import get

    source, target = conversion.source, conversion.target
    for side in (source, target):
        why = get(side.framework).cannot_run(side)
        if why:
            return LayerCheck(False, reason=f"{side.call} not run: {why}")
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(source.spec.output_shape).astype(np.float32)
    exact, bound = exact_output(read, y)
    results = {}
    for name, layer, run in (("source", source, read.run), ("target", target, run_target)):
        x = np.ascontiguousarray(np.transpose(y, layer.layout.data))
        try:
            out = np.asarray(run(x), dtype=np.float64)
        except Exception as error:      # the framework refused: say so, don't crash
            first = (str(error).strip().splitlines() or [""])[0][:300]
            return LayerCheck(False, reason=f"the {name} {layer.call} raised "
                              f"{type(error).__name__}: {first}")
        shape = permuted(exact.shape, layer.layout.output)   # the target's crop included
        if out.shape != shape:
            return LayerCheck(False, reason=f"the {name} gave shape {out.shape}, expected "
                              f"{shape}")
        results[name] = np.transpose(out, inverse(layer.layout.output))
    errors = {name: np.abs(r - exact) for name, r in results.items()}
    return LayerCheck(all(bool(np.all(e <= bound)) for e in errors.values()),
                      float(np.abs(results["source"] - results["target"]).max()),
                      float(errors["source"].max()), float(errors["target"].max()),
                      float(bound.max()))


def input_shape_arg(call: str, input_shape, channels: int, nd: int, layout: Layout):
    """The layer's full input shape in its layout from ``input_shape``: the full shape, or the
    spatial sizes alone (batch 1, the layer's channels)."""
    from .layer import shape_arg

    if input_shape is None:
        raise ConvSpecError(f"{call} does not know its input size: give input_shape (the "
                            f"spatial sizes, or the whole shape in its layout)", "input_shape")
    shape = shape_arg("input_shape", input_shape)
    if len(shape) == nd:
        return permuted((1, channels, *shape), layout.data)
    if len(shape) != nd + 2:
        raise ConvSpecError(f"{call}: input_shape must have {nd} spatial sizes or {nd + 2} "
                            f"entries, got {shape}", "input_shape")
    return shape
