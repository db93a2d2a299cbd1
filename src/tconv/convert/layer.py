"""One transposed-conv layer as a framework spells it, and the argument checks readers share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..spec import ConvSpec, ConvSpecError, at_least, per_dim
from .layout import Layout, permuted
from .window import Pair, layer_dims, spec_keeping, split_wide, widened, windows


@dataclass(frozen=True)
class Layer:
    """One transposed-conv layer as a framework spells it, and in tconv's terms.

    Attributes
    ----------
    framework : str
        The framework's name in :mod:`tconv.frameworks` (``"torch"``, ``"tensorflow"``, ...).
    call : str
        What builds it, e.g. ``"torch.nn.ConvTranspose2d"``.
    args : dict
        The reader's arguments: the shapes (``input_shape``, ...) and the layer's own arguments,
        in the framework's words. ``read(framework, **args)`` rebuilds this layer.
    spec : ConvSpec
        The canonical description of the transposed layer (see :mod:`tconv.convert.window`): its
        input is ``spec.output_shape``, its output ``spec.input_shape``.
    layout : Layout
    outer : tuple of (int, int)
        Per spatial dim, zero cells the layer adds before and after the transposed convolution
        ``spec`` (padding wider than the kernel's reach, in lax and Flax; an ONNX output_shape
        larger than the full result); empty for most layers.
    bias : bool
        Whether the layer adds a bias (``(C_out,)``, to every output cell).
    """

    framework: str
    call: str
    args: dict
    spec: ConvSpec
    layout: Layout
    outer: tuple[Pair, ...] = ()
    bias: bool = False

    @property
    def kwargs(self) -> dict:
        """The layer's (or op's) own arguments, without the array shapes and the ones left None."""
        from ..frameworks import get

        shapes = get(self.framework).shape_args
        return {k: v for k, v in self.args.items() if k not in shapes and v is not None}

    @property
    def windows(self) -> tuple[Pair, ...]:
        """Per spatial dim, the cells ``[start, stop)`` of the full result the layer returns
        (``start < 0``: zero cells before it)."""
        return widened(windows(self.spec), self.outer)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The layer's input in its own layout (the transposed convolution's input)."""
        return permuted(self.spec.output_shape, self.layout.data)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The layer's output in its own layout."""
        return permuted(self.spec.input_shape_with(self.outer), self.layout.output)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        shape = self.spec.weight_shape
        if self.layout.ordinary:
            shape = (shape[1] * self.spec.groups, shape[0] // self.spec.groups) + shape[2:]
        return permuted(shape, self.layout.weight)

    @property
    def data_format(self) -> str:
        return self.layout.data_name

    @property
    def weight_format(self) -> str:
        return self.layout.weight_name(self.spec.groups)

    def describe(self) -> str:
        """One line: the call with its arguments."""
        from .code import call_text

        return call_text(self.call, [], self.kwargs, width=None)

    def tconv_call(self) -> str:
        """The same layer as a call of :func:`tconv.conv_transpose` (the canonical spec)."""
        from .code import tconv_call

        return tconv_call(self.spec)

    def code(self) -> str:
        """Python that builds this layer from its weight array ``w`` and defines ``forward(x)``."""
        from .code import render
        from .layout import WeightTransform

        return render(self, WeightTransform.identity(self.spec.ndim), None)


def make(framework: str, call: str, args: dict, *, batch: int, c_in: int, c_out: int,
         kernel, stride, dilation, groups: int, size, wins, layout: Layout,
         wide: bool = False, bias: bool = False) :
    """The Layer whose canonical spec keeps ``wins``, after checking the channels.

    ``c_in`` and ``c_out`` are the transposed layer's input and output channels. ``wide``: the
    framework's windows may reach past the transposed convolution (zero cells added:
    :func:`~tconv.convert.window.split_wide`).
    """
    groups = ints("groups", groups, 1)[0]
    if c_in % groups or c_out % groups:
        raise ConvSpecError(
            f"{call}: groups={groups} must divide the input channels {c_in} and the output "
            f"channels {c_out}")
    outer: tuple[Pair, ...] = ()
    if wide:
        wins, outer = split_wide(wins, layer_dims(size, kernel, stride, dilation), call)
    spec = spec_keeping((batch, c_in) + tuple(size), (c_in, c_out // groups) + tuple(kernel),
                        stride, dilation, groups, wins, call)
    return Layer(framework, call, args, spec, layout, outer, bool(bias))


# -- argument checks the readers share ----------------------------------------------------------

def ints(name: str, value, nd: int, minimum: int = 1) -> tuple[int, ...]:
    """An int or ``nd`` ints, each at least ``minimum``."""
    return at_least(name, per_dim(name, value, nd), minimum)


def shape_arg(name: str, value, rank: int | None = None) -> tuple[int, ...]:
    """A sequence of sizes >= 1 (of ``rank`` entries if given)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConvSpecError(f"{name} must be a sequence of ints, got {value!r}")
    result = per_dim(name, tuple(value), len(tuple(value)))
    if rank is not None and len(result) != rank:
        raise ConvSpecError(f"{name} must have {rank} entries, got {result}")
    if any(v < 1 for v in result):
        raise ConvSpecError(f"{name} must have sizes >= 1, got {result}")
    return result


def need_dims(call: str, nd: int, most: int = 3) -> None:
    if not 1 <= nd <= most:
        raise ConvSpecError(f"{call} has 1 to {most} spatial dims, this layer has {nd}")


def no_groups(call: str, spec: ConvSpec) -> None:
    if spec.groups > 1:
        raise ConvSpecError(
            f"{call} has no groups: it cannot express groups={spec.groups} (split the layer into "
            f"{spec.groups} layers on channel slices, or use PyTorch, ONNX or "
            f"lax.conv_general_dilated)")


def iterable(value) -> list:
    """``value`` as a list: its items, or ``[value]`` for a scalar or a string."""
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def int_list(value, nd: int) -> list[int]:
    return list(per_dim("value", value, nd))


def pair_list(name: str, value, count: int, allow_negative: bool) -> tuple[Pair, ...]:
    """An int, ``count`` ints or ``count`` (low, high) pairs, as pairs."""
    entries = iterable(value)
    if len(entries) == 1 and count != 1 and not isinstance(entries[0], Iterable):
        entries = entries * count
    if len(entries) != count:
        raise ConvSpecError(f"{name} must have {count} entries (an int or a (low, high) pair "
                            f"each), got {value!r}")
    result = []
    for entry in entries:
        pair = tuple(iterable(entry))
        pair = pair * 2 if len(pair) == 1 else pair
        if len(pair) != 2:
            raise ConvSpecError(f"{name} entries must be ints or (low, high) pairs, got {entry!r}")
        pair = per_dim(name, pair, 2)
        if not allow_negative and min(pair) < 0:
            raise ConvSpecError(f"{name} must be >= 0, got {value!r}")
        result.append(pair)
    return tuple(result)


def compact(values):
    """One int when every dim has the same value, else a tuple (PyTorch's, Keras' spelling)."""
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def show(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(values) == 1 else str(values)


def padding_words(padding):
    """``(mode, explicit)``: a lower-case string mode or None, and the explicit value."""
    if isinstance(padding, str):
        return padding.lower(), None
    return None, padding
