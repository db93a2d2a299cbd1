"""Convert transposed-convolution layers between frameworks, exactly or with the smallest crop.

Every framework computes the same *full* transposed convolution and keeps a window of it
(:mod:`.window`); frameworks differ in how their arguments choose the window and in how they lay
out data and weight (:mod:`.layout`). So a conversion is exact when the target keeps the same
window. When the target cannot, tconv picks the target layer whose window is closest and states
the *crop* that cuts it to the source's: per spatial dim ``(low, high)``, the cells to remove at
the start and at the end of the target's output (negative: zero cells to add, which is exact only
past the full result). Where no target layer exists (no groups, too many dims, stride with
dilation in Keras, ...) :func:`convert` raises :class:`~tconv.spec.ConvSpecError` saying why.

What each framework's arguments mean lives in its module of :mod:`tconv.frameworks` (``read``,
``write``, ``from_flags``, ``code``); this package knows no framework.

Examples
--------
>>> from tconv import convert
>>> layer = convert.from_flags("tf", input_size=(8, 8), kernel=3, stride=2, padding="same")
>>> result = convert.convert(layer, "torch")
>>> result.target.kwargs["padding"], result.crop
(0, ((0, 1), (0, 1)))
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..spec import ConvSpecError
from .code import crop_axes, crop_words, jsonable, render, spec_dict
from .layer import Layer, ints, iterable, shape_arg
from .layout import Layout, WeightTransform, inverse, permuted
from .objects import LayerCheck
from .window import Pair, canonical, crop, layer_dims, spec_dims, spec_keeping, split_wide

__all__ = ["FRAMEWORKS", "Layout", "WeightTransform", "Layer", "Conversion", "Check", "canonical",
           "read", "from_flags", "convert", "check", "layer", "model"]


def __getattr__(name: str):
    if name == "FRAMEWORKS":      # computed when asked: the registry imports framework modules
        from ..frameworks import converters

        return tuple(converters())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _framework(name):
    from ..frameworks import converters, get

    framework = get(name)
    if framework.name not in converters():
        raise ConvSpecError(f"framework {name!r} has no transposed-conv layer tconv reads; one of "
                            f"{', '.join(converters())}")
    return framework


def read(framework: str, **args) :
    """The layer ``framework`` builds from ``args`` (the arguments of its ``read``, which are the
    layer's own arguments plus the array shapes; see :mod:`tconv.frameworks`).

    >>> read("torch", input_shape=(1, 1, 4, 4), in_channels=1, out_channels=1, kernel_size=3,
    ...      stride=2, padding=1, output_padding=1).spec.padding
    ((1, 0), (1, 0))
    """
    fw = _framework(framework)
    layer = fw.read(**args)
    return replace(layer, framework=fw.name, args=dict(args))


@dataclass(frozen=True)
class Conversion:
    """A source layer, the target layer closest to it, and the crop that makes them equal.

    ``crop`` is per spatial dim ``(low, high)``: cells to remove from the start and the end of the
    target layer's output (negative: zero cells to add). Apply the weight transform to the
    source's weight, the target layer to the data (in the target's layout), then the crop.
    """

    source: Layer
    target: Layer
    crop: tuple[Pair, ...]
    #: per spatial dim, the source's dilation written into the target's kernel as zeros
    #: (``convert(zero_dilated_kernel=True)``); empty otherwise
    dilate: tuple[int, ...] = ()

    @property
    def exact(self) -> bool:
        """True when the target layer alone equals the source (no crop)."""
        return all(c == (0, 0) for c in self.crop)

    @property
    def weight_transform(self) -> WeightTransform:
        return WeightTransform.between(self.source.layout, self.target.layout,
                                       self.source.spec.groups, self.dilate)

    @property
    def input_permute(self) -> tuple[int, ...]:
        """``np.transpose(x_source, input_permute)`` is the target's input."""
        back = inverse(self.source.layout.data)
        return tuple(back[p] for p in self.target.layout.data)

    @property
    def output_permute(self) -> tuple[int, ...]:
        """``np.transpose(y_target, output_permute)`` is the source's output layout."""
        back = inverse(self.target.layout.output)
        return tuple(back[p] for p in self.source.layout.output)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The target's output after the crop, in the target's layout."""
        return permuted(self.source.spec.input_shape_with(self.source.outer),
                        self.target.layout.output)

    def notes(self) -> list[str]:
        """Why each crop is there, per spatial dim."""
        from ..frameworks import get

        result = []
        for i, (cut, want, have, dim) in enumerate(zip(self.crop, self.source.windows,
                                                       self.target.windows,
                                                       spec_dims(self.source.spec))):
            if cut == (0, 0):
                continue
            result.append(
                f"spatial dim {i}: the source keeps cells [{want[0]}, {want[1]}) of the "
                f"{dim.full}-cell full result, {self.target.call} keeps [{have[0]}, {have[1]}): "
                + crop_words(cut))
        why = get(self.target.framework).crop_reason
        if result and why:
            result.append(why)
        return result

    def code(self) -> str:
        """Python that builds the target layer from the source's weight ``w`` and defines
        ``forward(x)`` (``x`` in the target's layout), crop included."""
        return render(self.target, self.weight_transform, self)

    @property
    def crop_axes(self) -> list[int]:
        """The axes of the target's output (in its layout) that the crop's entries cut."""
        return crop_axes(self.target)

    def to_dict(self, batch: bool = True) -> dict:
        """The conversion as JSON data. ``batch=False``: the batch size was not given, and
        every shape says ``null`` for it (TF's output_shape takes the input's batch)."""
        from ..frameworks import get

        def shape(values, layer):
            values = list(values)
            if not batch:
                values[layer.layout.data.index(0)] = None
            return values

        def kwargs(layer):
            framework = get(layer.framework)
            return jsonable(layer.kwargs if batch else framework.unbatched(layer))

        return {
            "from": self.source.framework, "to": self.target.framework,
            "source": {"call": self.source.call, "layer": kwargs(self.source),
                       "bias": self.source.bias,
                       "input_shape": shape(self.source.input_shape, self.source),
                       "weight_shape": list(self.source.weight_shape),
                       "data_format": self.source.data_format,
                       "weight_format": self.source.weight_format},
            "call": self.target.call,
            "layer": kwargs(self.target),
            "bias": self.source.bias,
            "input_shape": shape(self.target.input_shape, self.target),
            "weight_shape": list(self.target.weight_shape),
            "data_format": self.target.data_format,
            "output_format": self.target.layout.output_name,
            "weight_format": self.target.weight_format,
            "weight_transform": self.weight_transform.to_dict(),
            "input_permute": list(self.input_permute),
            "output_permute": list(self.output_permute),
            "crop": [list(c) for c in self.crop],
            "crop_axes": self.crop_axes,
            "exact": self.exact,
            "output_shape": shape(self.output_shape, self.target),
            "tconv": spec_dict(self.source.spec, batch),
            "notes": self.notes(),
        }


def convert(layer: Layer, to: str, *, transpose_kernel: bool = False,
            use_consistent_padding: bool = False,
            zero_dilated_kernel: bool = False) -> Conversion:
    """The ``to`` layer equal to ``layer``, with the smallest crop where it needs one.

    Parameters
    ----------
    layer : Layer
        From :func:`read` or :func:`from_flags`.
    to : str
        A framework name (:data:`FRAMEWORKS`).
    transpose_kernel, use_consistent_padding : bool
        Options of the JAX / Flax target: write ``transpose_kernel=True`` (the kernel is then
        TF's filter, not flipped), or (JAX) forward-convolution padding pairs.
    zero_dilated_kernel : bool
        Write a dilated layer with dilation 1 and the kernel dilated by zeros (the same
        extent, so the same windows): the form TensorFlow's CPU kernels (tensorflow#69103) and
        LiteRT's ``TRANSPOSE_CONV`` run. LiteRT targets always get it.

    Raises
    ------
    ConvSpecError
        When no layer of the target expresses it, with the reason.
    """
    target_fw = _framework(to)
    spec, outer, dilate = layer.spec, layer.outer, ()
    if (zero_dilated_kernel or target_fw.dilates_kernel) and max(spec.dilation) > 1:
        spec, outer = undilated(layer)
        dilate = layer.spec.dilation
    options = {"transpose_kernel": transpose_kernel, "consistent": use_consistent_padding,
               "outer": outer, "bias": layer.bias}
    target = read(target_fw.name, **target_fw.write(spec, options))
    cuts = tuple(crop(want, have) for want, have in zip(layer.windows, target.windows))
    return Conversion(layer, target, cuts, dilate)


def undilated(layer: Layer):
    """``(spec, outer)`` of ``layer`` with dilation 1 and the kernel dilated by zeros: the same
    extents, so the same windows of the same full result (zero cells it cannot reach as
    output_padding, once the dilation no longer allows them, become ``outer``)."""
    spec = layer.spec
    dims = layer_dims(spec.output_size, spec.extents, spec.stride, (1,) * spec.ndim)
    wins, outer = split_wide(layer.windows, dims, "the zero-dilated layer")
    return spec_keeping(spec.output_shape, spec.weight_shape[:2] + spec.extents, spec.stride,
                        (1,) * spec.ndim, spec.groups, wins, "the zero-dilated layer"), outer


def from_flags(framework: str, *, input_size, kernel, in_channels: int = 1,
               out_channels: int = 1, stride=1, padding=None, output_padding=None,
               output_shape=None, dilation=1, groups: int = 1, auto_pad=None,
               transpose_kernel: bool = False, use_consistent_padding: bool = False,
               batch: int = 1, bias: bool = False) :
    """The layer ``framework`` builds from framework-neutral words (those of ``tconv convert``).

    Sizes are spatial; ``in_channels`` / ``out_channels`` are the transposed layer's own input
    and output channels; the data layout is the framework's default (channels-last for TF, Keras,
    JAX, Flax). ``padding`` is in the framework's own words: ``"same"``/``"valid"`` (any case),
    an int or one per dim, ``(low, high)`` pairs per dim, or ONNX's ``2 * ndim`` pads. None is
    the framework's default (PyTorch 0, TF 'SAME', Keras 'valid', Flax 'SAME', ONNX no pads).
    ``bias``: the layer adds a bias (its argument where it has one, ONNX's input B; TF's and
    lax's ops have none, and the conversion adds it after them).
    """
    fw = _framework(framework)
    size = shape_arg("input size", iterable(input_size))
    k = ints("kernel", kernel, len(size))
    given = {"--layer-output-padding": output_padding, "--layer-output-size": output_shape,
             "--auto-pad": auto_pad, "--transpose-kernel": transpose_kernel or None,
             "--consistent-padding": use_consistent_padding or None,
             "--groups": None if groups == 1 else groups}
    unsupported = [name for name, value in given.items()
                   if value is not None and name not in fw.flags_taken]
    if unsupported:
        raise ConvSpecError(f"{fw.flag_call} has no {', '.join(unsupported)} "
                            f"({fw.flag_hint or 'not a parameter of it'})")
    layer = fw.from_flags(size=size, k=k, in_channels=in_channels, out_channels=out_channels,
                          stride=stride, padding=padding, output_padding=output_padding,
                          output_shape=output_shape, dilation=dilation, groups=groups,
                          auto_pad=auto_pad, transpose_kernel=transpose_kernel,
                          consistent=use_consistent_padding, batch=batch, bias=bias)
    return replace(layer, framework=fw.name, bias=bias)


# -- checking with the real frameworks ------------------------------------------------------------

@dataclass(frozen=True)
class Check(LayerCheck):
    """The source layer and the converted target run by their frameworks on the same data
    (:class:`~tconv.convert.objects.LayerCheck`), and what ran each side (``source_way``,
    ``target_way``)."""

    source_way: str = ""
    target_way: str = ""


def check(conversion: Conversion, *, seed: int = 0) -> Check:
    """Run the source layer and the converted target with the installed frameworks.

    Both are the objects the code tconv prints builds (:meth:`Layer.code`,
    :meth:`Conversion.code`: weight transform, crop and bias included), run on the same random
    float32 data and compared with tconv's float64 transposed convolution of the canonical
    spec (plus the bias).
    """
    from ..frameworks import first_line, get
    from .objects import LayerRead, built_from_code, check_objects

    source, target = conversion.source, conversion.target
    ways = dict(source_way=get(source.framework).runner(source),
                target_way=get(target.framework).runner(target))
    spec = source.spec
    rng = np.random.default_rng(seed + 1)       # the data is drawn from ``seed`` in check_objects
    w = rng.standard_normal(spec.weight_shape).astype(np.float32)     # tconv's weight layout
    w_source = WeightTransform.between(Layout.plain(spec.ndim), source.layout,
                                       spec.groups).apply(w)
    b = rng.standard_normal(spec.in_channels).astype(np.float32) if source.bias else None
    runs = {}
    for name, side, conv in (("source", source, None), ("target", target, conversion)):
        why = get(side.framework).cannot_run(side)
        if why:
            return Check(False, reason=f"{side.call} not run: {why}", **ways)
        try:
            runs[name] = built_from_code(side, conv, w_source, b).run
        except Exception as error:      # the framework refused the layer: say so, don't crash
            return Check(False, reason=f"{side.call} raised {first_line(error)}", **ways)
    read = LayerRead(source, w_source, b, runs["source"])
    outcome = check_objects(read, conversion, runs["target"], seed=seed)
    return Check(**outcome.to_dict(), **ways)


# -- layer objects and whole models (the submodule ``layer`` stays importable by its full name;
# ``tconv.convert.layer`` the attribute is the function) ------------------------------------------

from .models import ModelConversion, model  # noqa: E402
from .objects import LayerConversion, layer  # noqa: E402
