"""Convert transposed-convolution layers between PyTorch, TensorFlow, Keras 3, JAX, Flax and ONNX.

The model
---------
Every framework computes the same *full* transposed convolution and keeps a window of it. Per
spatial dim, with the layer's input size ``o``, stride ``s`` and dilated kernel extent
``K = dilation * (kernel - 1) + 1``, the full result has ``F = (o - 1) * s + K`` cells (each input
cell adds a scaled copy of the kernel); a layer returns the cells ``[start, stop)`` of it, where
cells past ``F`` are zeros. The frameworks differ only in how their arguments choose the window
(PyTorch: ``[padding, F + output_padding - padding)``; TensorFlow: from ``output_shape`` and
``'SAME'``/``'VALID'``; lax: from the padding of the zero-inserted input; ONNX: from ``pads``,
``auto_pad``, ``output_shape``, ``output_padding``) and in how they lay out data and weight.

So a conversion is exact when the target keeps the same window. When the target cannot, tconv picks
the target layer whose window is closest and states the *crop* that cuts it to the source's: per
spatial dim ``(low, high)``, the cells to remove at the start and at the end of the target's
output. A negative value means zero cells to *add* there, which is exact only past the full
result (ONNX and TensorFlow need it when PyTorch's ``output_padding`` reaches past the stride, as
dilation allows). Where no target layer exists
(PyTorch, TensorFlow and Keras stop at 3 spatial dims; TensorFlow, Keras, Flax and
``lax.conv_transpose`` have no groups; Keras refuses stride > 1 with dilation > 1) ``convert``
raises :class:`~tconv.spec.ConvSpecError` saying why.

The canonical description
-------------------------
In tconv's terms the window is a :class:`~tconv.spec.ConvSpec` built by ``ConvSpec.transpose``
with the weight in PyTorch's transposed layout ``(C_in, C_out/groups, *k)``: ``start`` is the low
padding and ``stop = F + output_padding - high padding``. Only ``high - output_padding`` reaches
the numbers, so padding ``(1, 1)`` with output_padding 1 and padding ``(1, 0)`` with 0 are the same
layer; tconv's canonical spec is the one with the smaller output_padding (``output_padding > 0``
only when the high padding is 0). Every reader returns it, so a round trip A -> B -> A gives the
original spec exactly. "C_in" and "C_out" are always the channels of the transposed layer's own
input and output.

Layouts: ``x`` of a layer is tconv's ``(N, C_in, *spatial)`` data permuted by ``Layout.data``; its
weight is a permutation of tconv's weight, or of the kernel of the equivalent *ordinary*
convolution (spatially flipped, channels swapped per group), which is what ``lax.conv_transpose``
without ``transpose_kernel``, ``lax.conv_general_dilated`` and Flax use.

Examples
--------
>>> from tconv import convert
>>> layer = convert.from_flags("tf", input_size=(8, 8), kernel=3, stride=2, padding="same")
>>> result = convert.convert(layer, "torch")
>>> result.target.kwargs["padding"], result.crop
(0, ((0, 1), (0, 1)))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from .._arrays import swap_group_channels
from ..spec import ConvSpec, ConvSpecError, at_least, per_dim

__all__ = ["FRAMEWORKS", "Layout", "WeightTransform", "Layer", "Conversion", "Check", "canonical",
           "read", "from_torch", "from_tf", "from_keras", "from_jax", "from_flax", "from_onnx",
           "from_flags", "convert", "check"]

#: The frameworks tconv reads and writes. ``"jax"`` is ``lax.conv_transpose``, or
#: ``lax.conv_general_dilated`` given ``lhs_dilation``; ``"flax"`` is ``flax.linen.ConvTranspose``.
FRAMEWORKS = ("torch", "tf", "keras", "jax", "flax", "onnx")
NAMES = {"torch": "PyTorch", "tf": "TensorFlow", "keras": "Keras", "jax": "JAX", "flax": "Flax",
         "onnx": "ONNX"}

Pair = tuple[int, int]


# -- one spatial dim and its windows --------------------------------------------------------------

@dataclass(frozen=True)
class _Dim:
    """One spatial dim of a transposed convolution: what every window rule needs."""

    size: int       # input size of the transposed layer
    kernel: int
    stride: int
    dilation: int

    @property
    def extent(self) -> int:
        return ConvSpec.extent(self.kernel, self.dilation)

    @property
    def full(self) -> int:
        return ConvSpec.full_size(self.size, self.kernel, self.stride, self.dilation)

    @property
    def limit(self) -> int:
        """output_padding (tconv's, PyTorch's) is below this: max(stride, dilation)."""
        return max(self.stride, self.dilation)


def _dims(spec: ConvSpec) -> list[_Dim]:
    return _layer_dims(spec.output_size, spec.kernel_size, spec.stride, spec.dilation)


def _layer_dims(size, kernel, stride, dilation) -> list[_Dim]:
    return [_Dim(o, k, s, d) for o, k, s, d in zip(size, kernel, stride, dilation)]


def windows(spec: ConvSpec) -> tuple[Pair, ...]:
    """Per spatial dim, the cells ``[start, stop)`` of the full transposed result it keeps."""
    return tuple((w.start, w.stop) for w in spec.input_window)


def _spec(y_shape, w_shape, stride, dilation, groups, wins, where: str) -> ConvSpec:
    """The canonical spec keeping ``wins``: high padding and output_padding never both > 0."""
    pads, ops = [], []
    for i, ((start, stop), o, k, s, d) in enumerate(zip(wins, y_shape[2:], w_shape[2:], stride,
                                                        dilation)):
        dim = _Dim(o, k, s, d)
        if start < 0:
            raise ConvSpecError(
                f"{where} adds {-start} zero cells before the first output cell in spatial dim "
                f"{i} (it keeps cells [{start}, {stop}) of the {dim.full}-cell full result): "
                f"that is a transposed convolution followed by zero padding, not one layer")
        if stop <= start:
            raise ConvSpecError(
                f"{where} keeps no cells in spatial dim {i} (cells [{start}, {stop}) of the "
                f"{dim.full}-cell full result)")
        if stop - dim.full >= dim.limit:
            raise ConvSpecError(
                f"{where} adds {stop - dim.full} zero cells after the full result in spatial dim "
                f"{i}; a transposed convolution adds fewer than max(stride, dilation) = "
                f"{dim.limit} (output_padding)")
        pads.append((start, max(dim.full - stop, 0)))
        ops.append(max(stop - dim.full, 0))
    return ConvSpec.transpose(y_shape, w_shape, stride=stride, padding=tuple(pads),
                              output_padding=tuple(ops), dilation=dilation, groups=groups)


def canonical(spec: ConvSpec) -> ConvSpec:
    """The spec with the same windows (the same numbers) and the smallest output_padding.

    >>> spec = ConvSpec.transpose((1, 1, 4), (1, 1, 3), stride=2, padding=1, output_padding=1)
    >>> canonical(spec).padding, canonical(spec).output_padding
    (((1, 0),), (0,))
    """
    return _spec(spec.output_shape, spec.weight_shape, spec.stride, spec.dilation, spec.groups,
                 windows(spec), "the spec")


def _crop(want: Pair, have: Pair) -> Pair:
    """Cells to cut at the start and the end of ``have`` to get ``want`` (negative: add zeros)."""
    return want[0] - have[0], have[1] - want[1]


def _cost(crop: Pair) -> tuple[int, int]:
    """Cells moved, then cells added: a crop of 1 beats a pad of 1 beats a crop of 2."""
    return abs(crop[0]) + abs(crop[1]), max(-crop[0], 0) + max(-crop[1], 0)


def _fixable(want: Pair, have: Pair, full: int) -> bool:
    """Whether a crop turns ``have`` into ``want``: the cells ``have`` lacks must be zeros of the
    source, i.e. past the full result (a pad can only add zeros)."""
    return have[0] <= want[0] and (have[1] >= want[1] or have[1] >= full)


def _closest(want: Pair, full: int, candidates: Iterable[tuple[object, Pair]]):
    """The fixable (params, window) needing the smallest crop (the first of equals), or None."""
    fixable = [c for c in candidates if _fixable(want, c[1], full)]
    return min(fixable, key=lambda c: _cost(_crop(want, c[1]))) if fixable else None


def _choose(wants, fulls, modes: dict):
    """``modes`` maps a global mode (one padding string for all dims) to per-dim candidate lists;
    return ``(mode, [params per dim])`` needing the smallest total crop (earlier modes win
    ties)."""
    best = None
    for rank, (mode, candidates) in enumerate(modes.items()):
        picks = [_closest(want, full, cands)
                 for want, full, cands in zip(wants, fulls, candidates)]
        if None in picks:
            continue
        costs = [_cost(_crop(want, win)) for want, (_, win) in zip(wants, picks)]
        key = (sum(c[0] for c in costs), sum(c[1] for c in costs), rank)
        if best is None or key < best[0]:
            best = (key, mode, [params for params, _ in picks])
    if best is None:
        raise ConvSpecError("no layer of the target keeps the source's cells, even with a crop")
    return best[1], best[2]


# -- layouts and the weight transform -------------------------------------------------------------

def _inverse(perm: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort(perm))


def _channels_last(nd: int) -> tuple[int, ...]:
    """``(N, C, *sp) -> (N, *sp, C)`` as a transpose permutation."""
    return (0, *range(2, nd + 2), 1)


def _identity(nd: int) -> tuple[int, ...]:
    return tuple(range(nd + 2))


def _kernel_last(nd: int) -> tuple[int, ...]:
    """``(A, B, *k) -> (*k, B, A)``: TensorFlow's ``[*k, out, in]`` from tconv's ``(in, out, *k)``,
    and lax's ``HWIO`` from the ordinary kernel ``(O, I, *k)``."""
    return (*range(2, nd + 2), 1, 0)


@dataclass(frozen=True)
class Layout:
    """Where a framework keeps the axes of one layer's data and weight.

    Attributes
    ----------
    data, output : tuple of int
        The framework's input (output) array is ``np.transpose(a, data)`` of tconv's
        ``(N, C, *spatial)`` array ``a``.
    weight : tuple of int
        The framework's weight is ``np.transpose(k, weight)`` of the logical kernel ``k``.
    ordinary : bool
        False: ``k`` is tconv's weight ``(C_in, C_out/groups, *k)``. True: ``k`` is the kernel of
        the equivalent ordinary (zero-inserted) convolution, ``(C_out, C_in/groups, *k)`` with the
        channels swapped per group and every spatial axis reversed.
    """

    data: tuple[int, ...]
    output: tuple[int, ...]
    weight: tuple[int, ...]
    ordinary: bool = False


def _plain(nd: int) -> Layout:
    """tconv's own layout (PyTorch's, ONNX's)."""
    return Layout(_identity(nd), _identity(nd), _identity(nd))


def _tf_layout(nd: int, channels_last: bool = True) -> Layout:
    data = _channels_last(nd) if channels_last else _identity(nd)
    return Layout(data, data, _kernel_last(nd))


@dataclass(frozen=True)
class WeightTransform:
    """Source weight array -> target weight array: transpose, flip, then (groups only) regroup.

    ``apply(w) = swap(np.flip(np.transpose(w, permute), flip))`` where ``swap`` (only when
    ``swap_groups > 1``) swaps the two channel axes ``swap_axes`` within each of the
    ``swap_groups`` groups: ``(A, B) -> (swap_groups * B, A / swap_groups)``. The swap is needed
    between tconv's weight and the kernel of the ordinary convolution with groups; with one group
    it is a plain exchange of the axes and is part of ``permute``.
    """

    permute: tuple[int, ...]
    flip: tuple[int, ...] = ()
    swap_groups: int = 1
    swap_axes: tuple[int, int] | None = None

    @classmethod
    def between(cls, source: Layout, target: Layout, groups: int) -> "WeightTransform":
        """The transform from ``source``'s weight array to ``target``'s for the same layer."""
        inverse = _inverse(source.weight)
        permute = [inverse[p] for p in target.weight]
        if source.ordinary == target.ordinary:
            return cls(tuple(permute))
        flip = tuple(j for j, p in enumerate(target.weight) if p >= 2)
        a, b = target.weight.index(0), target.weight.index(1)
        if groups == 1:
            permute[a], permute[b] = permute[b], permute[a]
            return cls(tuple(permute), flip)
        return cls(tuple(permute), flip, groups, (a, b))

    @property
    def is_identity(self) -> bool:
        return (self.permute == tuple(range(len(self.permute))) and not self.flip
                and self.swap_groups == 1)

    def apply(self, w) -> np.ndarray:
        """The target's weight array from the source's ``w``."""
        w = np.transpose(np.asarray(w), self.permute)
        if self.flip:
            w = np.flip(w, self.flip)
        if self.swap_groups > 1:
            front = np.moveaxis(w, self.swap_axes, (0, 1))
            w = np.moveaxis(swap_group_channels(front, self.swap_groups), (0, 1), self.swap_axes)
        return np.ascontiguousarray(w)

    def code(self, source: str = "w", target: str = "weight") -> list[str]:
        """NumPy lines computing ``target`` from ``source``, exactly as :meth:`apply` does."""
        if self.is_identity:
            return [f"{target} = np.ascontiguousarray({source})"]
        lines = [f"{target} = np.transpose({source}, {self.permute})"]
        if self.flip:
            lines.append(f"{target} = np.flip({target}, axis={self.flip})")
        if self.swap_groups > 1:
            a, b = self.swap_axes
            g = self.swap_groups
            lines += [
                f"# swap the channel axes {a} and {b} within each of the {g} groups",
                f"{target} = np.moveaxis({target}, ({a}, {b}), (0, 1))",
                f"a, b, *rest = {target}.shape",
                f"{target} = {target}.reshape({g}, a // {g}, b, *rest).swapaxes(1, 2)",
                f"{target} = {target}.reshape({g} * b, a // {g}, *rest)",
                f"{target} = np.moveaxis({target}, (0, 1), ({a}, {b}))"]
        return lines + [f"{target} = np.ascontiguousarray({target})"]

    def to_dict(self) -> dict:
        return {"permute": list(self.permute), "flip": list(self.flip),
                "swap_groups": self.swap_groups,
                "swap_axes": None if self.swap_axes is None else list(self.swap_axes)}


def _letters(nd: int) -> list[str]:
    return list("DHW"[3 - nd:]) if nd <= 3 else [f"S{i}" for i in range(nd)]


def _data_name(perm: Sequence[int]) -> str:
    """``(0, 2, 3, 1)`` -> ``"NHWC"``."""
    tokens = ["N", "C"] + _letters(len(perm) - 2)
    return "".join(tokens[p] for p in perm) if len(perm) <= 5 else ",".join(
        tokens[p] for p in perm)


def _weight_name(layout: Layout, groups: int) -> str:
    """``"(kH, kW, C_out, C_in)"``: the axes of a framework's weight, in tconv's channel names."""
    nd = len(layout.weight) - 2
    per = "/groups" if groups > 1 else ""
    channels = ["C_out", f"C_in{per}"] if layout.ordinary else ["C_in", f"C_out{per}"]
    kernel = ["k" + c for c in _letters(nd)] if nd <= 3 else [f"k{i}" for i in range(nd)]
    if layout.ordinary:
        kernel = [k + " flipped" for k in kernel]
    tokens = channels + kernel
    return "(" + ", ".join(tokens[p] for p in layout.weight) + ")"


# -- the layer ------------------------------------------------------------------------------------

#: The reader arguments that are array shapes, not layer arguments, per framework.
_SHAPE_ARGS = {"torch": ("input_shape",), "tf": ("input_shape", "filters_shape"),
               "keras": ("input_shape",), "jax": ("lhs_shape", "rhs_shape"),
               "flax": ("input_shape",), "onnx": ("x_shape", "w_shape")}


@dataclass(frozen=True)
class Layer:
    """One transposed-conv layer as a framework spells it, and in tconv's terms.

    Attributes
    ----------
    framework : str
        One of :data:`FRAMEWORKS`.
    call : str
        What builds it, e.g. ``"torch.nn.ConvTranspose2d"``.
    args : dict
        The reader's arguments: the shapes (``input_shape``, ...) and the layer's own arguments,
        in the framework's words. ``read(framework, **args)`` rebuilds this layer.
    spec : ConvSpec
        The canonical description (see the module docstring).
    layout : Layout
    """

    framework: str
    call: str
    args: dict
    spec: ConvSpec
    layout: Layout

    @property
    def kwargs(self) -> dict:
        """The layer's (or op's) own arguments, without the array shapes and the ones left None."""
        return {k: v for k, v in self.args.items()
                if k not in _SHAPE_ARGS[self.framework] and v is not None}

    @property
    def windows(self) -> tuple[Pair, ...]:
        return windows(self.spec)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return _permuted(self.spec.output_shape, self.layout.data)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return _permuted(self.spec.input_shape, self.layout.output)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        shape = self.spec.weight_shape
        if self.layout.ordinary:
            shape = (shape[1] * self.spec.groups, shape[0] // self.spec.groups) + shape[2:]
        return _permuted(shape, self.layout.weight)

    @property
    def data_format(self) -> str:
        return _data_name(self.layout.data)

    @property
    def weight_format(self) -> str:
        return _weight_name(self.layout, self.spec.groups)

    def describe(self) -> str:
        """One line: the call with its arguments."""
        return _call_text(self.call, [], self.kwargs, width=None)

    def tconv_call(self) -> str:
        """The same layer as a call of :func:`tconv.conv_transpose` (the canonical spec)."""
        return _tconv_call(self.spec)

    def code(self) -> str:
        """Python that builds this layer from its weight array ``w`` and defines ``forward(x)``."""
        return _render(self, WeightTransform(_identity(self.spec.ndim)), None)


def _permuted(shape, perm) -> tuple[int, ...]:
    return tuple(shape[p] for p in perm)


def _ints(name: str, value, nd: int, minimum: int = 1) -> tuple[int, ...]:
    return at_least(name, per_dim(name, value, nd), minimum)


def _shape(name: str, value, rank: int | None = None) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConvSpecError(f"{name} must be a sequence of ints, got {value!r}")
    shape = per_dim(name, tuple(value), len(tuple(value)))
    if rank is not None and len(shape) != rank:
        raise ConvSpecError(f"{name} must have {rank} entries, got {shape}")
    if any(v < 1 for v in shape):
        raise ConvSpecError(f"{name} must have sizes >= 1, got {shape}")
    return shape


def _need_dims(call: str, nd: int, most: int = 3) -> None:
    if not 1 <= nd <= most:
        raise ConvSpecError(f"{call} has 1 to {most} spatial dims, this layer has {nd}")


def _make(framework: str, call: str, args: dict, *, batch: int, c_in: int, c_out: int,
          kernel, stride, dilation, groups: int, size, wins, layout: Layout) -> Layer:
    """The Layer whose canonical spec keeps ``wins``, after checking the channels."""
    groups = _ints("groups", groups, 1)[0]
    if c_in % groups or c_out % groups:
        raise ConvSpecError(
            f"{call}: groups={groups} must divide the input channels {c_in} and the output "
            f"channels {c_out}")
    spec = _spec((batch, c_in) + tuple(size), (c_in, c_out // groups) + tuple(kernel), stride,
                 dilation, groups, wins, call)
    return Layer(framework, call, args, spec, layout)


# -- PyTorch --------------------------------------------------------------------------------------

def _torch_window(dim: _Dim, padding: int, output_padding: int) -> Pair:
    """``nn.ConvTransposeNd``: crop ``padding`` at both ends, add output_padding at the end."""
    return padding, dim.full + output_padding - padding


def from_torch(input_shape, in_channels, out_channels, kernel_size, stride=1, padding=0,
               output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
               output_size=None) -> Layer:
    """``torch.nn.ConvTranspose{1,2,3}d(...)`` applied to an input of ``input_shape``.

    The arguments are the module's (``output_size`` is the one of its ``forward``); for
    ``F.conv_transpose{N}d(x, w, ...)`` pass ``in_channels = w.shape[0]``,
    ``out_channels = w.shape[1] * groups`` and ``kernel_size = w.shape[2:]``. Data ``(N, C, *sp)``,
    weight ``(C_in, C_out/groups, *k)``: tconv's own conventions.
    """
    input_shape = _shape("input_shape", input_shape)
    nd = len(input_shape) - 2
    call = f"torch.nn.ConvTranspose{nd}d"
    _need_dims("torch.nn.ConvTransposeNd", nd)
    if padding_mode != "zeros":
        raise ConvSpecError(f"{call} supports padding_mode='zeros' only, got {padding_mode!r}")
    if isinstance(padding, str) or any(isinstance(p, Iterable) for p in _iterable(padding)):
        raise ConvSpecError(
            f"{call} takes padding as an int or one int per dim (it crops both ends alike), "
            f"got padding={padding!r}")
    if input_shape[1] != in_channels:
        raise ConvSpecError(
            f"{call}: input_shape {input_shape} has {input_shape[1]} channels, in_channels is "
            f"{in_channels}")
    kernel, stride_, dilation_ = (_ints("kernel_size", kernel_size, nd),
                                  _ints("stride", stride, nd), _ints("dilation", dilation, nd))
    pads = _ints("padding", padding, nd, 0)
    dims = _layer_dims(input_shape[2:], kernel, stride_, dilation_)
    if output_size is not None:
        ops = _torch_output_padding(call, dims, pads, output_size)
    else:
        ops = _ints("output_padding", output_padding, nd, 0)
        for i, (op, dim) in enumerate(zip(ops, dims)):
            if op >= dim.limit:
                raise ConvSpecError(
                    f"{call}: output_padding={_show(ops)} must be smaller than stride or dilation"
                    f" ({dim.limit} in spatial dim {i})")
    args = dict(input_shape=input_shape, in_channels=in_channels, out_channels=out_channels,
                kernel_size=kernel_size, stride=stride, padding=padding,
                output_padding=output_padding, groups=groups, bias=bias, dilation=dilation,
                padding_mode=padding_mode, output_size=output_size)
    wins = [_torch_window(dim, p, op) for dim, p, op in zip(dims, pads, ops)]
    return _make("torch", call, args, batch=input_shape[0], c_in=in_channels, c_out=out_channels,
                 kernel=kernel, stride=stride_, dilation=dilation_, groups=groups,
                 size=input_shape[2:], wins=wins, layout=_plain(nd))


def _torch_output_padding(call: str, dims, pads, output_size) -> tuple[int, ...]:
    """The module's ``forward(x, output_size)``: sizes from the minimum to stride - 1 more."""
    size = _shape("output_size", output_size)
    size = size[2:] if len(size) == len(dims) + 2 else size
    if len(size) != len(dims):
        raise ConvSpecError(f"{call}: output_size must have {len(dims)} spatial sizes, got {size}")
    ops = []
    for i, (n, dim, p) in enumerate(zip(size, dims, pads)):
        smallest = dim.full - 2 * p
        if not smallest <= n < smallest + dim.stride:
            raise ConvSpecError(
                f"{call}: output_size={_show(size)} is out of range in spatial dim {i}: valid "
                f"sizes are {smallest}..{smallest + dim.stride - 1}")
        ops.append(n - smallest)
    return tuple(ops)


def _write_torch(spec: ConvSpec, options: dict) -> dict:
    """Per dim the (padding, output_padding) keeping the closest window; padding beyond the
    source's start would only add zeros at the start, so it stays <= start."""
    _need_dims("torch.nn.ConvTransposeNd", spec.ndim)
    picks = []
    for want, dim in zip(windows(spec), _dims(spec)):
        candidates = (((p, op), _torch_window(dim, p, op)) for p in range(want[0] + 1)
                      for op in range(dim.limit) if dim.full + op - 2 * p >= 1)
        picks.append(_closest(want, dim.full, candidates)[0])
    c_in, c_out = spec.out_channels, spec.in_channels
    return dict(input_shape=spec.output_shape, in_channels=c_in, out_channels=c_out,
                kernel_size=_compact(spec.kernel_size), stride=_compact(spec.stride),
                padding=_compact(p for p, _ in picks),
                output_padding=_compact(op for _, op in picks), groups=spec.groups, bias=False,
                dilation=_compact(spec.dilation))


# -- TensorFlow -----------------------------------------------------------------------------------

_TF_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}


def _tf_window(dim: _Dim, padding, size: int, i: int, call: str = "tf.nn.conv_transpose") -> Pair:
    """The window of ``tf.nn.conv_transpose`` for output size ``size`` in one dim.

    ``padding`` is ``"VALID"``, ``"SAME"`` or an explicit ``(low, high)`` pair. TF accepts only
    a ``size`` whose forward convolution has the input's size: VALID and explicit
    ``floor((size + P - K) / s) + 1 == o``; SAME ``ceil(size / s) == o``, with the total padding
    ``max((o - 1) * s + K - size, 0)`` split low = floor (the odd cell at the end).
    """
    o, s, k = dim.size, dim.stride, dim.extent
    if padding == "SAME":
        if -(-size // s) != o:
            raise ConvSpecError(
                f"{call}: output size {size} in spatial dim {i} does not fit padding 'SAME': "
                f"ceil({size}/{s}) must be the input size {o}, so {(o - 1) * s + 1}..{o * s}")
        start = max((o - 1) * s + k - size, 0) // 2
        return start, start + size
    low, high = (0, 0) if padding == "VALID" else padding
    room = size + low + high - k
    if room < 0 or room // s + 1 != o:
        least = dim.full - low - high
        raise ConvSpecError(
            f"{call}: output size {size} in spatial dim {i} does not fit padding {padding!r}: "
            f"the forward convolution of that size must have the input size {o}, so "
            f"{max(least, 1)}..{least + s - 1}")
    return low, low + size


def from_tf(input_shape, filters_shape, output_shape=None, strides=1, padding="SAME",
            data_format=None, dilations=None) -> Layer:
    """``tf.nn.conv_transpose(input, filters, output_shape, strides, padding, data_format,
    dilations)`` for ``input.shape == input_shape`` and ``filters.shape == filters_shape``.

    ``filters`` is ``[*k, C_out, C_in]``. ``padding`` is ``"SAME"``, ``"VALID"`` or (2-d only)
    the explicit ``[[0, 0], [lo, hi], [lo, hi], [0, 0]]`` (in the data_format's order).
    ``output_shape`` is required by TF; when omitted, tconv takes the size Keras would
    (``in * stride`` for SAME, ``in * stride + max(K - stride, 0)`` for VALID).
    """
    filters_shape = _shape("filters_shape", filters_shape)
    nd = len(filters_shape) - 2
    _need_dims("tf.nn.conv_transpose", nd)
    input_shape = _shape("input_shape", input_shape, nd + 2)
    formats = _TF_FORMATS[nd]
    if data_format is not None and data_format not in formats:
        raise ConvSpecError(
            f"tf.nn.conv_transpose data_format must be one of {formats} for {nd} spatial dims, "
            f"got {data_format!r}")
    last = data_format is None or data_format == formats[0]
    layout = _tf_layout(nd, last)
    batch, c_in = input_shape[0], input_shape[-1 if last else 1]
    size = _permuted(input_shape, _inverse(layout.data))[2:]
    *kernel, c_out, c_in_f = filters_shape
    if c_in_f != c_in:
        raise ConvSpecError(
            f"tf.nn.conv_transpose: filters_shape[-1]={c_in_f} (in_channels of [*k, out, in]) "
            f"must equal the input channels {c_in}")
    stride = _tf_per_dim("strides", strides, nd, layout)
    dilation = _tf_per_dim("dilations", 1 if dilations is None else dilations, nd, layout)
    pads = _tf_padding(padding, nd, layout)
    dims = _layer_dims(size, kernel, stride, dilation)
    sizes = _tf_output_size(output_shape, pads, dims, layout, batch, c_out)
    if output_shape is None:        # state the size tconv took
        output_shape = list(_permuted((batch, c_out, *sizes), layout.output))
    args = dict(input_shape=input_shape, filters_shape=filters_shape, output_shape=output_shape,
                strides=strides, padding=padding, data_format=data_format, dilations=dilations)
    wins = [_tf_window(dim, p, n, i) for i, (dim, p, n) in enumerate(zip(dims, pads, sizes))]
    return _make("tf", "tf.nn.conv_transpose", args, batch=batch, c_in=c_in, c_out=c_out,
                 kernel=kernel, stride=stride, dilation=dilation, groups=1, size=size,
                 wins=wins, layout=layout)


def _tf_per_dim(name: str, value, nd: int, layout: Layout) -> tuple[int, ...]:
    """An int, ``nd`` ints, or ``nd + 2`` ints whose batch and channel entries are 1."""
    values = tuple(_iterable(value))
    if len(values) == nd + 2:
        full = _ints(name, values, nd + 2)
        canon = _permuted(full, _inverse(layout.data))
        if canon[:2] != (1, 1):
            raise ConvSpecError(f"tf.nn.conv_transpose {name}={list(full)} must be 1 in the batch "
                                f"and channel dims")
        return canon[2:]
    return _ints(name, value, nd)


def _tf_padding(padding, nd: int, layout: Layout) -> list:
    """Per dim ``"SAME"``, ``"VALID"`` or an explicit pair."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ConvSpecError(f"tf.nn.conv_transpose padding must be 'SAME', 'VALID' or "
                                f"explicit pairs (TF takes upper case only), got {padding!r}")
        return [padding] * nd
    if nd != 2:
        raise ConvSpecError(f"tf.nn.conv{nd}d_transpose takes padding 'SAME' or 'VALID' only "
                            f"(explicit padding is 2-d only), got {padding!r}")
    pairs = _pairs("padding", padding, nd + 2, allow_negative=False)
    canon = _permuted(pairs, _inverse(layout.data))
    if canon[:2] != ((0, 0), (0, 0)):
        raise ConvSpecError(f"tf.nn.conv_transpose explicit padding must be [0, 0] in the batch "
                            f"and channel dims, got {padding!r}")
    return list(canon[2:])


def _tf_output_size(output_shape, pads, dims, layout, batch, c_out) -> tuple[int, ...]:
    nd = len(dims)
    if output_shape is None:
        if not all(isinstance(p, str) for p in pads):
            raise ConvSpecError("tf.nn.conv_transpose needs output_shape with explicit padding")
        return tuple(d.size * d.stride + (max(d.extent - d.stride, 0) if p == "VALID" else 0)
                     for d, p in zip(dims, pads))
    shape = _shape("output_shape", output_shape)
    if len(shape) == nd:
        return shape
    if len(shape) != nd + 2:
        raise ConvSpecError(f"tf.nn.conv_transpose output_shape must have {nd + 2} entries "
                            f"(or {nd} spatial sizes), got {shape}")
    canon = _permuted(shape, _inverse(layout.output))
    if canon[:2] != (batch, c_out):
        raise ConvSpecError(
            f"tf.nn.conv_transpose output_shape {shape} must have the batch {batch} and the "
            f"filters' output channels {c_out}")
    return canon[2:]


def _no_groups(call: str, spec: ConvSpec) -> None:
    if spec.groups > 1:
        raise ConvSpecError(
            f"{call} has no groups: it cannot express groups={spec.groups} (split the layer into "
            f"{spec.groups} layers on channel slices, or use PyTorch, ONNX or "
            f"lax.conv_general_dilated)")


def _write_tf(spec: ConvSpec, options: dict) -> dict:
    """'VALID' or 'SAME' with an output_shape if exact, else explicit pairs (2-d), else the
    closest with a crop. TF's output_shape is always one whose forward convolution fits."""
    call = "tf.nn.conv_transpose"
    _need_dims(call, spec.ndim)
    _no_groups(call, spec)
    dims, wants = _dims(spec), windows(spec)
    sizes = {"VALID": lambda d: range(d.full, d.full + d.stride),
             "SAME": lambda d: range((d.size - 1) * d.stride + 1, d.size * d.stride + 1)}
    modes = {mode: [[(n, _tf_window(d, mode, n, i)) for n in sizes[mode](d)]
                    for i, d in enumerate(dims)] for mode in sizes}
    if spec.ndim == 2:
        modes["EXPLICIT"] = [[_tf_explicit(d, want, i)] for i, (d, want) in
                             enumerate(zip(dims, wants))]
    mode, picks = _choose(wants, [d.full for d in dims], modes)
    layout = _tf_layout(spec.ndim)
    if mode == "EXPLICIT":
        sizes = [n for _, n in picks]
        padding = [[0, 0], *[list(pair) for pair, _ in picks], [0, 0]]
    else:
        sizes, padding = picks, mode
    c_in, c_out = spec.out_channels, spec.in_channels
    return dict(input_shape=_permuted(spec.output_shape, layout.data),
                filters_shape=(*spec.kernel_size, c_out, c_in),
                output_shape=[spec.batch, *sizes, c_out], strides=list(spec.stride),
                padding=padding, data_format=_TF_FORMATS[spec.ndim][0],
                dilations=list(spec.dilation))


def _within(want: Pair, top: int) -> Pair:
    """The window closest to ``want`` inside ``[0, top)``: what explicit pads with
    ``output_padding < stride`` reach (``top = F + stride - 1``); the rest are zeros to add."""
    stop = min(want[1], top)
    return min(want[0], stop - 1), stop


def _tf_explicit(dim: _Dim, want: Pair, i: int):
    """Explicit pairs reach any window in ``[0, F + stride - 1)``: its start is the low pad, and
    the high pad makes the forward convolution of the output size fit."""
    start, stop = _within(want, dim.full + dim.stride - 1)
    pair = (start, max(dim.full - stop, 0))
    return (pair, stop - start), _tf_window(dim, pair, stop - start, i)


# -- Keras 3 --------------------------------------------------------------------------------------

def _keras_size(dim: _Dim, padding: str, output_padding) -> int:
    """Keras' output size (``compute_conv_transpose_output_shape``), which it passes to
    ``tf.nn.conv_transpose`` as output_shape; output_padding None and 0 differ
    (tensorflow#50168)."""
    k, s = dim.extent, dim.stride
    if padding == "valid":
        extra = max(k, s) - k if output_padding is None else output_padding
        return (dim.size - 1) * s + k + extra
    if output_padding is None:
        return dim.size * s
    return (dim.size - 1) * s + k % 2 + output_padding


def _keras_window(dim: _Dim, padding: str, output_padding, i: int, call: str) -> Pair:
    return _tf_window(dim, padding.upper(), _keras_size(dim, padding, output_padding), i,
                      f"{call} (through tf.nn.conv_transpose)")


def from_keras(input_shape, filters, kernel_size, strides=1, padding="valid",
               output_padding=None, data_format=None, dilation_rate=1, use_bias=True) -> Layer:
    """``keras.layers.Conv{1,2,3}DTranspose(filters, kernel_size, ...)`` on ``input_shape``.

    Keras 3 on the TensorFlow backend (the numbers every backend must give since keras PR
    #22876): the output size comes from ``padding`` and ``output_padding`` (None differs from 0,
    tensorflow#50168), then ``tf.nn.conv_transpose`` keeps TF's window for that size. Kernel
    ``(*k, filters, C_in)``; ``data_format`` ``"channels_last"`` (default) or
    ``"channels_first"``.
    """
    input_shape = _shape("input_shape", input_shape)
    nd = len(input_shape) - 2
    call = f"keras.layers.Conv{nd}DTranspose"
    _need_dims("keras.layers.ConvNDTranspose", nd)
    if data_format not in (None, "channels_last", "channels_first"):
        raise ConvSpecError(f"{call} data_format must be 'channels_last' or 'channels_first', "
                            f"got {data_format!r}")
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ConvSpecError(f"{call} padding must be 'valid' or 'same', got {padding!r}")
    mode = padding.lower()
    layout = _tf_layout(nd, data_format != "channels_first")
    kernel = _ints("kernel_size", kernel_size, nd)
    stride, dilation = _ints("strides", strides, nd), _ints("dilation_rate", dilation_rate, nd)
    if max(stride) > 1 and max(dilation) > 1:
        raise ConvSpecError(f"{call} refuses strides > 1 together with dilation_rate > 1, got "
                            f"strides={_show(stride)}, dilation_rate={_show(dilation)}")
    ops = [None] * nd if output_padding is None else _ints("output_padding", output_padding, nd, 0)
    for i, (op, s) in enumerate(zip(ops, stride)):
        if op is not None and op >= s:
            raise ConvSpecError(f"{call}: output_padding={_show(ops)} must be smaller than "
                                f"strides={_show(stride)} (spatial dim {i})")
    canon = _permuted(input_shape, _inverse(layout.data))
    dims = _layer_dims(canon[2:], kernel, stride, dilation)
    args = dict(input_shape=input_shape, filters=filters, kernel_size=kernel_size, strides=strides,
                padding=padding, output_padding=output_padding, data_format=data_format,
                dilation_rate=dilation_rate, use_bias=use_bias)
    wins = [_keras_window(dim, mode, op, i, call) for i, (dim, op) in enumerate(zip(dims, ops))]
    return _make("keras", call, args, batch=canon[0], c_in=canon[1], c_out=filters, kernel=kernel,
                 stride=stride, dilation=dilation, groups=1, size=canon[2:], wins=wins,
                 layout=layout)


def _write_keras(spec: ConvSpec, options: dict) -> dict:
    """'same'/'valid' with output_padding None if exact (the usual spelling), else with
    output_padding per dim; the closest with a crop otherwise."""
    call = f"keras.layers.Conv{spec.ndim}DTranspose"
    _need_dims("keras.layers.ConvNDTranspose", spec.ndim)
    _no_groups(call, spec)
    if max(spec.stride) > 1 and max(spec.dilation) > 1:
        raise ConvSpecError(
            f"{call} refuses strides > 1 together with dilation_rate > 1 (stride "
            f"{_show(spec.stride)}, dilation {_show(spec.dilation)}): no Keras layer expresses it")
    dims, wants = _dims(spec), windows(spec)
    modes = {}
    for padding in ("valid", "same"):
        modes[padding, None] = [_keras_candidates(d, padding, [None], i, call)
                                for i, d in enumerate(dims)]
    for padding in ("valid", "same"):
        modes[padding, "ints"] = [_keras_candidates(d, padding, range(d.stride), i, call)
                                  for i, d in enumerate(dims)]
    (padding, kind), picks = _choose(wants, [d.full for d in dims], modes)
    layout = _tf_layout(spec.ndim)
    return dict(input_shape=_permuted(spec.output_shape, layout.data), filters=spec.in_channels,
                kernel_size=_compact(spec.kernel_size), strides=_compact(spec.stride),
                padding=padding, output_padding=None if kind is None else _compact(picks),
                data_format="channels_last", dilation_rate=_compact(spec.dilation),
                use_bias=False)


def _keras_candidates(dim: _Dim, padding: str, ops, i: int, call: str) -> list:
    """(output_padding, window) for each output_padding Keras (and then TF) accepts."""
    result = []
    for op in ops:
        try:
            result.append((op, _keras_window(dim, padding, op, i, call)))
        except ConvSpecError:       # e.g. 'same', even kernel, output_padding 0: TF refuses it
            pass
    return result


# -- JAX (lax) and Flax ---------------------------------------------------------------------------

_LAX_DEFAULT = {1: ("NHC", "HIO", "NHC"), 2: ("NHWC", "HWIO", "NHWC"),
                3: ("NHWDC", "HWDIO", "NHWDC")}


def _lax_specs(dimension_numbers, nd: int, default: str) -> tuple[tuple[int, ...], ...]:
    """``(lhs_spec, rhs_spec, out_spec)``: the axis of N, C (O, I) and each spatial dim.

    ``dimension_numbers`` is None, three strings like ``("NHWC", "HWIO", "NHWC")`` or three int
    tuples (``lax.ConvDimensionNumbers``). Spatial dims are ordered as in the rhs string, as lax
    does. None means lax's default of the function: ``"channels_last"`` (conv_transpose, 1-3 d)
    or ``"iota"`` (conv_general_dilated: NCHW / OIHW).
    """
    if dimension_numbers is None:
        if default == "iota":
            return (_identity(nd),) * 3
        if nd not in _LAX_DEFAULT:
            raise ConvSpecError(f"lax.conv_transpose has default dimension_numbers for 1-3 "
                                f"spatial dims only, this layer has {nd}; pass dimension_numbers")
        dimension_numbers = _LAX_DEFAULT[nd]
    try:
        lhs, rhs, out = dimension_numbers
    except (TypeError, ValueError):
        raise ConvSpecError(f"dimension_numbers must be three specs (lhs, rhs, out), got "
                            f"{dimension_numbers!r}") from None
    if all(isinstance(x, str) for x in (lhs, rhs, out)):
        return _lax_from_strings(lhs, rhs, out, nd)
    specs = tuple(per_dim("dimension_numbers", tuple(x), nd + 2) for x in (lhs, rhs, out))
    for spec in specs:
        if sorted(spec) != list(range(nd + 2)):
            raise ConvSpecError(f"dimension_numbers {dimension_numbers!r} must be permutations of "
                                f"0..{nd + 1}")
    return specs


def _lax_from_strings(lhs: str, rhs: str, out: str, nd: int):
    for text, pair in ((lhs, "NC"), (rhs, "OI"), (out, "NC")):
        spatial = set(text) - set(pair)
        if (len(text) != nd + 2 or len(set(text)) != len(text) or not set(pair) <= set(text)
                or spatial != set(rhs) - set("OI")):
            raise ConvSpecError(
                f"dimension_numbers ({lhs!r}, {rhs!r}, {out!r}) must each have {nd + 2} distinct "
                f"letters: N and C (O and I for the kernel) and the same spatial letters")
    order = [c for c in rhs if c not in "OI"]

    def spec(text, pair):
        return (text.index(pair[0]), text.index(pair[1])) + tuple(text.index(c) for c in order)

    return spec(lhs, "NC"), spec(rhs, "OI"), spec(out, "NC")


def _lax_layout(specs, ordinary: bool) -> Layout:
    lhs, rhs, out = specs
    return Layout(_inverse(lhs), _inverse(out), _inverse(rhs), ordinary)


def _lax_window(dim: _Dim, pair: Pair) -> Pair:
    """Explicit lax padding ``(a, b)`` pads the zero-inserted input (jax-ml/jax#32267): the
    result keeps cells ``[K - 1 - a, F - (K - 1 - b))`` of the full one."""
    k = dim.extent
    return k - 1 - pair[0], dim.full - (k - 1 - pair[1])


def _lax_pair(dim: _Dim, window: Pair) -> Pair:
    """The explicit lax padding keeping ``window`` (the inverse of :func:`_lax_window`)."""
    k = dim.extent
    return k - 1 - window[0], k - 1 - (dim.full - window[1])


def _lax_string_windows(spec: ConvSpec) -> dict:
    """The windows lax.conv_transpose means by 'SAME' and 'VALID' (None where invalid), from
    the backend's reading of lax (``jax_backend.string_specs``)."""
    from ..frameworks.jax import string_specs

    return {mode: None if meant is None else windows(meant)
            for mode, meant in string_specs(spec).items()}


def _lax_windows(call: str, padding, dims, spec_for_strings, consistent: bool, nd: int):
    """Per-dim windows of lax.conv_transpose / Flax for a padding string or explicit pairs."""
    if isinstance(padding, str):
        if padding not in ("SAME", "VALID"):
            raise ConvSpecError(f"{call} padding must be 'SAME', 'VALID' (upper case) or "
                                f"(low, high) pairs, got {padding!r}")
        wins = _lax_string_windows(spec_for_strings())[padding]
        if wins is None:
            raise ConvSpecError(f"{call} padding {padding!r} keeps no cells for this layer")
        return list(wins)
    pairs = _pairs("padding", padding, nd, allow_negative=True)
    if consistent:      # the forward convolution's padding, as in PyTorch (jax-ml/jax#32268)
        return [(lo, dim.full - hi) for dim, (lo, hi) in zip(dims, pairs)]
    return [_lax_window(dim, pair) for dim, pair in zip(dims, pairs)]


def _lax_ints(call: str, name: str, value, nd: int) -> tuple[int, ...]:
    """lax takes per-dim sequences (an int raises inside lax); None means all ones."""
    if value is None:
        return (1,) * nd
    if not isinstance(value, Iterable) or isinstance(value, str):
        raise ConvSpecError(f"{call} {name} must be a sequence of {nd} ints, got {value!r}")
    return _ints(name, value, nd)


def _provisional(batch, c_in, c_out, size, kernel, stride, dilation) -> ConvSpec:
    """A spec with the layer's sizes (padding 'valid'), to ask what lax's strings mean."""
    return ConvSpec.transpose((batch, c_in) + tuple(size), (c_in, c_out) + tuple(kernel),
                              stride=stride, padding="valid", dilation=dilation)


def from_jax(lhs_shape, rhs_shape, strides=None, padding=None, rhs_dilation=None,
             dimension_numbers=None, transpose_kernel=False, use_consistent_padding=False, *,
             window_strides=None, lhs_dilation=None, feature_group_count=1) -> Layer:
    """``lax.conv_transpose(lhs, rhs, strides, padding, rhs_dilation, dimension_numbers,
    transpose_kernel, use_consistent_padding)``, or, given ``lhs_dilation``, the transposed
    convolution written as ``lax.conv_general_dilated(lhs, rhs, window_strides=1, padding,
    lhs_dilation=stride, rhs_dilation, dimension_numbers, feature_group_count)``.

    conv_transpose: default layout NHWC / HWIO (1-3 dims). Without ``transpose_kernel`` the kernel
    is used as it is, unflipped, as the ordinary kernel ``(I=C_in, O=C_out)`` (jax-ml/jax#11252);
    with it, it is the forward kernel ``(I=C_out, O=C_in)``, TF's filter. Explicit pairs pad the
    zero-inserted input, ``dilation * (k - 1) - padding`` in PyTorch's terms (jax-ml/jax#17618,
    #32267), unless ``use_consistent_padding`` (#32268). ``'SAME'``/``'VALID'`` are TF's
    (``'VALID'`` is longer than PyTorch's padding 0 when stride > K, samuela/torch2jax PR #3).
    conv_general_dilated: default layout NCHW / OIHW; explicit pairs only (lax refuses strings
    with lhs_dilation); the kernel is the ordinary one, groups allowed.
    """
    if lhs_dilation is not None or window_strides is not None:
        return _from_lax_general(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation,
                                 rhs_dilation, dimension_numbers, feature_group_count,
                                 strides=strides)
    call = "jax.lax.conv_transpose"
    lhs_shape, rhs_shape = _shape("lhs_shape", lhs_shape), _shape("rhs_shape", rhs_shape)
    nd = len(rhs_shape) - 2
    if len(lhs_shape) != nd + 2:
        raise ConvSpecError(f"{call}: lhs_shape {lhs_shape} and rhs_shape {rhs_shape} must have "
                            f"the same rank")
    if strides is None or padding is None:
        raise ConvSpecError(f"{call} needs strides and padding (it has no defaults)")
    specs = _lax_specs(dimension_numbers, nd, "channels_last")
    layout = _lax_layout(specs, ordinary=not transpose_kernel)
    lhs = _permuted(lhs_shape, specs[0])
    logical = _permuted(rhs_shape, specs[1])       # (O, I, *k) as labelled
    c_in = logical[0] if transpose_kernel else logical[1]
    c_out = logical[1] if transpose_kernel else logical[0]
    if lhs[1] != c_in:
        raise ConvSpecError(
            f"{call}: the input has {lhs[1]} channels but the kernel's "
            f"{'O' if transpose_kernel else 'I'} axis has {c_in}"
            + (" (transpose_kernel=True swaps I and O)" if transpose_kernel else ""))
    kernel = logical[2:]
    stride = _lax_ints(call, "strides", strides, nd)
    dilation = _lax_ints(call, "rhs_dilation", rhs_dilation, nd)
    dims = _layer_dims(lhs[2:], kernel, stride, dilation)
    wins = _lax_windows(call, padding, dims, lambda: _provisional(
        lhs[0], c_in, c_out, lhs[2:], kernel, stride, dilation), use_consistent_padding, nd)
    args = dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape, strides=strides, padding=padding,
                rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                transpose_kernel=transpose_kernel,
                use_consistent_padding=use_consistent_padding)
    return _make("jax", call, args, batch=lhs[0], c_in=c_in, c_out=c_out, kernel=kernel,
                 stride=stride, dilation=dilation, groups=1, size=lhs[2:], wins=wins,
                 layout=layout)


def _from_lax_general(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation, rhs_dilation,
                      dimension_numbers, feature_group_count, strides=None) -> Layer:
    call = "jax.lax.conv_general_dilated"
    if strides is not None:
        raise ConvSpecError(f"{call} has window_strides and lhs_dilation, not strides")
    lhs_shape, rhs_shape = _shape("lhs_shape", lhs_shape), _shape("rhs_shape", rhs_shape)
    nd = len(rhs_shape) - 2
    if len(lhs_shape) != nd + 2:
        raise ConvSpecError(f"{call}: lhs_shape {lhs_shape} and rhs_shape {rhs_shape} must have "
                            f"the same rank")
    if _lax_ints(call, "window_strides", window_strides, nd) != (1,) * nd:
        raise ConvSpecError(
            f"{call} with window_strides={window_strides!r} is not a transposed convolution: its "
            f"stride is lhs_dilation, and window_strides must be 1")
    stride = _lax_ints(call, "lhs_dilation", lhs_dilation, nd)
    dilation = _lax_ints(call, "rhs_dilation", rhs_dilation, nd)
    groups = feature_group_count
    specs = _lax_specs(dimension_numbers, nd, "iota")
    lhs = _permuted(lhs_shape, specs[0])
    c_out, c_in_g, *kernel = _permuted(rhs_shape, specs[1])
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ConvSpecError(f"{call} feature_group_count must be an int >= 1, got {groups!r}")
    if lhs[1] != c_in_g * groups:
        raise ConvSpecError(f"{call}: the input has {lhs[1]} channels, the kernel's I axis "
                            f"{c_in_g} x feature_group_count {groups} = {c_in_g * groups}")
    dims = _layer_dims(lhs[2:], kernel, stride, dilation)
    if isinstance(padding, str):
        if any(s > 1 for s in stride):
            raise ConvSpecError(f"{call} refuses string padding with lhs_dilation > 1 ('String "
                                f"padding is not implemented for transposed convolution')")
        padding = _stride_one_string(call, padding, dims)
    pairs = _pairs("padding", padding, nd, allow_negative=True)
    args = dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape, window_strides=window_strides,
                padding=padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
                dimension_numbers=dimension_numbers, feature_group_count=feature_group_count)
    wins = [_lax_window(dim, pair) for dim, pair in zip(dims, pairs)]
    return _make("jax", call, args, batch=lhs[0], c_in=lhs[1], c_out=c_out, kernel=kernel,
                 stride=stride, dilation=dilation, groups=groups, size=lhs[2:], wins=wins,
                 layout=_lax_layout(specs, ordinary=True))


def _stride_one_string(call: str, padding: str, dims) -> list[Pair]:
    """lax's forward padding strings at stride 1: total K - 1, the odd cell high (SAME_LOWER:
    low); VALID none."""
    mode = padding.upper()
    if mode not in ("SAME", "SAME_LOWER", "VALID"):
        raise ConvSpecError(f"{call} padding must be 'SAME', 'SAME_LOWER', 'VALID' or pairs, got "
                            f"{padding!r}")
    pairs = []
    for dim in dims:
        total = 0 if mode == "VALID" else dim.extent - 1
        low = total - total // 2 if mode == "SAME_LOWER" else total // 2
        pairs.append((low, total - low))
    return pairs


def _jax_conv_transpose_args(spec: ConvSpec, padding, transpose_kernel: bool,
                             consistent: bool) -> dict:
    nd = spec.ndim
    specs = _lax_specs(None, nd, "channels_last")
    layout = _lax_layout(specs, ordinary=not transpose_kernel)
    c_in, c_out = spec.out_channels, spec.in_channels
    logical = (c_in, c_out) if transpose_kernel else (c_out, c_in)
    return dict(lhs_shape=_permuted(spec.output_shape, layout.data),
                rhs_shape=_permuted(logical + spec.kernel_size, layout.weight),
                strides=spec.stride, padding=padding, rhs_dilation=spec.dilation,
                dimension_numbers=_LAX_DEFAULT[nd], transpose_kernel=transpose_kernel,
                use_consistent_padding=consistent)


def _lax_padding(spec: ConvSpec, consistent: bool):
    """'VALID' or 'SAME' when one keeps the spec's windows, else explicit pairs (always exact)."""
    wants = windows(spec)
    for mode, wins in sorted(_lax_string_windows(spec).items(), reverse=True):
        if wins == wants:
            return mode
    if consistent:
        return tuple((start, dim.full - stop) for dim, (start, stop) in zip(_dims(spec), wants))
    return tuple(_lax_pair(dim, want) for dim, want in zip(_dims(spec), wants))


def _write_jax(spec: ConvSpec, options: dict) -> dict:
    """lax.conv_transpose (lax's default channels-last layout) for one group and 1-3 dims, else
    the lhs-dilated lax.conv_general_dilated (channels-last up to 3 dims). Always exact."""
    if spec.groups == 1 and spec.ndim <= 3:
        return _jax_conv_transpose_args(spec, _lax_padding(spec, options["consistent"]),
                                        options["transpose_kernel"], options["consistent"])
    numbers = _LAX_DEFAULT.get(spec.ndim)        # None (NCHW / OIHW) past 3 dims
    layout = _lax_layout(_lax_specs(numbers, spec.ndim, "iota"), ordinary=True)
    c_in, c_out, g = spec.out_channels, spec.in_channels, spec.groups
    pairs = tuple(_lax_pair(dim, want) for dim, want in zip(_dims(spec), windows(spec)))
    return dict(lhs_shape=_permuted(spec.output_shape, layout.data),
                rhs_shape=_permuted((c_out, c_in // g) + spec.kernel_size, layout.weight),
                window_strides=(1,) * spec.ndim, padding=pairs, lhs_dilation=spec.stride,
                rhs_dilation=spec.dilation, dimension_numbers=numbers, feature_group_count=g)


def from_flax(input_shape, features, kernel_size, strides=None, padding="SAME",
              kernel_dilation=None, use_bias=True, transpose_kernel=False) -> Layer:
    """``flax.linen.ConvTranspose(features, kernel_size, strides, padding, kernel_dilation,
    use_bias, transpose_kernel)`` applied to ``input_shape`` (channels-last).

    As documented (and in its source), the module calls ``lax.conv_transpose(x, kernel,
    strides, padding, rhs_dilation=kernel_dilation, transpose_kernel=transpose_kernel)`` with
    lax's default layout: so an int or pair padding is the padding of the zero-inserted input,
    not PyTorch's (google/flax#4593, documented by flax PR #4990). The kernel is
    ``(*k, C_in, features)``, or ``(*k, features, C_in)`` with ``transpose_kernel``. No groups;
    ``'CIRCULAR'`` padding wraps the result around and is not a zero-padded transposed convolution.
    """
    call = "flax.linen.ConvTranspose"
    kernel = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
    nd = len(kernel)
    _need_dims(call, nd)
    input_shape = _shape("input_shape", input_shape, nd + 2)
    if isinstance(padding, str) and padding == "CIRCULAR":
        raise ConvSpecError(f"{call} padding='CIRCULAR' sums the result periodically: it is not a "
                            f"zero-padded transposed convolution, and no other framework has it")
    lax_padding = padding if isinstance(padding, str) else _flax_pairs(padding, nd)
    rhs = ((*kernel, features, input_shape[-1]) if transpose_kernel
           else (*kernel, input_shape[-1], features))
    lax_layer = from_jax(input_shape, rhs, _ints("strides", 1 if strides is None else strides, nd),
                         lax_padding, _ints("kernel_dilation", 1 if kernel_dilation is None
                                            else kernel_dilation, nd), None, transpose_kernel)
    args = dict(input_shape=input_shape, features=features, kernel_size=kernel_size,
                strides=strides, padding=padding, kernel_dilation=kernel_dilation,
                use_bias=use_bias, transpose_kernel=transpose_kernel)
    return Layer("flax", call, args, lax_layer.spec, lax_layer.layout)


def _flax_pairs(padding, nd: int) -> list[Pair]:
    """Flax's ``canonicalize_padding``: an int for every side, or per dim an int or a pair."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        return [(padding, padding)] * nd
    return list(_pairs("padding", padding, nd, allow_negative=True))


def _write_flax(spec: ConvSpec, options: dict) -> dict:
    """What flax.linen.ConvTranspose passes to lax.conv_transpose: the same padding as the
    jax target (strings when exact, else explicit pairs), channels-last. No groups."""
    call = "flax.linen.ConvTranspose"
    _need_dims(call, spec.ndim)
    _no_groups(call, spec)
    return dict(input_shape=_permuted(spec.output_shape, _channels_last(spec.ndim)),
                features=spec.in_channels, kernel_size=spec.kernel_size, strides=spec.stride,
                padding=_lax_padding(spec, consistent=False), kernel_dilation=spec.dilation,
                use_bias=False, transpose_kernel=options["transpose_kernel"])


# -- ONNX -----------------------------------------------------------------------------------------

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _onnx_window(dim: _Dim, op: int, auto_pad: str, pads: Pair, size, i: int) -> Pair:
    """The ONNX ConvTranspose window in one dim (the operator text; onnxruntime follows it).

    ``output_shape`` given: ``total = F + output_padding - size``, the larger half at the start
    unless SAME_UPPER (onnx#4527 is onnx.reference ignoring this). SAME_UPPER / SAME_LOWER
    without it: size ``o * stride``, total ``K - stride + output_padding``, the odd cell at the end
    (UPPER) or start (LOWER): output_padding moves the pads, not the size (onnx#4299). VALID: no
    pads. NOTSET: ``pads``.
    """

    if size is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        size = dim.size * dim.stride if size is None else size
        total = dim.full + op - size
        if total < 0:
            raise ConvSpecError(
                f"ONNX ConvTranspose: output size {size} in spatial dim {i} is larger than the "
                f"full result plus output_padding ({dim.full + op}): the pads would be negative, "
                f"which onnxruntime clamps and onnx.reference does not")
        start = ConvSpec.split_padding(total, odd_low=auto_pad != "SAME_UPPER")[0]
        return start, start + size
    if auto_pad == "VALID":
        return 0, dim.full + op
    return pads[0], dim.full + op - pads[1]


def from_onnx(x_shape, w_shape, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
              output_padding=None, output_shape=None, pads=None, strides=None) -> Layer:
    """An ONNX ``ConvTranspose`` node with these attributes, ``X`` of ``x_shape`` and ``W`` of
    ``w_shape`` = ``(C_in, C_out/group, *k)`` (tconv's layout; data ``(N, C, *sp)``).

    ``pads`` is ``[begin..., end...]``. onnxruntime and onnx.reference require
    ``output_padding < stride`` (the text allows up to the dilation): tconv follows the runtimes.
    """
    call = "ONNX ConvTranspose"
    x_shape, w_shape = _shape("x_shape", x_shape), _shape("w_shape", w_shape)
    nd = len(w_shape) - 2
    if len(x_shape) != nd + 2:
        raise ConvSpecError(f"{call}: X {x_shape} and W {w_shape} must have the same rank")
    if x_shape[1] != w_shape[0]:
        raise ConvSpecError(f"{call}: W {w_shape} must be (C, M/group, *k) with C = the "
                            f"{x_shape[1]} channels of X")
    if kernel_shape is not None and _shape("kernel_shape", kernel_shape) != w_shape[2:]:
        raise ConvSpecError(f"{call}: kernel_shape={list(kernel_shape)} differs from W's "
                            f"{list(w_shape[2:])}")
    if auto_pad not in _AUTO_PADS:
        raise ConvSpecError(f"{call} auto_pad must be one of {_AUTO_PADS}, got {auto_pad!r}")
    if pads is not None and auto_pad != "NOTSET":
        raise ConvSpecError(f"{call}: pads and auto_pad={auto_pad} cannot be used together")
    stride = _ints("strides", 1 if strides is None else strides, nd)
    dilation = _ints("dilations", 1 if dilations is None else dilations, nd)
    ops = _ints("output_padding", 0 if output_padding is None else output_padding, nd, 0)
    for i, (op, s) in enumerate(zip(ops, stride)):
        if op >= s:
            raise ConvSpecError(f"{call}: output_padding={list(ops)} must be smaller than "
                                f"strides={list(stride)} (onnxruntime and onnx.reference refuse "
                                f"it; spatial dim {i})")
    pad_pairs = _onnx_pads(pads, nd)
    sizes = [None] * nd
    if output_shape is not None:
        sizes = _shape("output_shape", output_shape)
        sizes = sizes[2:] if len(sizes) == nd + 2 else sizes
        if len(sizes) != nd:
            raise ConvSpecError(f"{call} output_shape must have {nd} spatial sizes, got "
                                f"{list(output_shape)}")
    dims = _layer_dims(x_shape[2:], w_shape[2:], stride, dilation)
    args = dict(x_shape=x_shape, w_shape=w_shape, auto_pad=auto_pad, dilations=dilations,
                group=group, kernel_shape=kernel_shape, output_padding=output_padding,
                output_shape=output_shape, pads=pads, strides=strides)
    wins = [_onnx_window(dim, op, auto_pad, pair, n, i)
            for i, (dim, op, pair, n) in enumerate(zip(dims, ops, pad_pairs, sizes))]
    return _make("onnx", call, args, batch=x_shape[0], c_in=x_shape[1],
                 c_out=w_shape[1] * group, kernel=w_shape[2:], stride=stride, dilation=dilation,
                 groups=group, size=x_shape[2:], wins=wins, layout=_plain(nd))


def _onnx_pads(pads, nd: int) -> list[Pair]:
    """``[begin..., end...]`` as one (begin, end) pair per dim."""
    if pads is None:
        return [(0, 0)] * nd
    if not isinstance(pads, Iterable) or isinstance(pads, str):
        raise ConvSpecError(f"ONNX ConvTranspose pads must be {2 * nd} ints [begin..., end...], "
                            f"got {pads!r}")
    values = _ints("pads", pads, 2 * nd, 0)
    return list(zip(values[:nd], values[nd:]))


def _write_onnx(spec: ConvSpec, options: dict) -> dict:
    """Explicit ``pads`` and ``output_padding`` (< stride); an output_padding past the stride
    (PyTorch allows it below the dilation) becomes zero cells added after the node."""
    from ..frameworks.onnx import pads_form

    reachable = [_within(want, dim.full + dim.stride - 1)
                 for dim, want in zip(_dims(spec), windows(spec))]
    node_spec = _spec(spec.output_shape, spec.weight_shape, spec.stride, spec.dilation,
                      spec.groups, reachable, "ONNX ConvTranspose")
    attrs, why = pads_form(node_spec)
    if why:                                   # cannot happen for a canonical spec
        raise ConvSpecError(why)
    return dict(x_shape=spec.output_shape, w_shape=spec.weight_shape, **attrs)


# -- reading and converting -----------------------------------------------------------------------

READERS = {"torch": from_torch, "tf": from_tf, "keras": from_keras, "jax": from_jax,
           "flax": from_flax, "onnx": from_onnx}
_WRITERS = {"torch": _write_torch, "tf": _write_tf, "keras": _write_keras, "jax": _write_jax,
            "flax": _write_flax, "onnx": _write_onnx}


def _framework(name) -> str:
    if name not in FRAMEWORKS:
        raise ConvSpecError(f"framework {name!r} is not one of {', '.join(FRAMEWORKS)}")
    return name


def read(framework: str, **args) -> Layer:
    """The layer ``framework`` builds from ``args`` (the arguments of ``from_<framework>``).

    >>> read("torch", input_shape=(1, 1, 4, 4), in_channels=1, out_channels=1, kernel_size=3,
    ...      stride=2, padding=1, output_padding=1).spec.padding
    ((1, 0), (1, 0))
    """
    layer = READERS[_framework(framework)](**args)
    return Layer(layer.framework, layer.call, dict(args), layer.spec, layer.layout)


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

    @property
    def exact(self) -> bool:
        """True when the target layer alone equals the source (no crop)."""
        return all(c == (0, 0) for c in self.crop)

    @property
    def weight_transform(self) -> WeightTransform:
        return WeightTransform.between(self.source.layout, self.target.layout,
                                       self.source.spec.groups)

    @property
    def input_permute(self) -> tuple[int, ...]:
        """``np.transpose(x_source, input_permute)`` is the target's input."""
        inverse = _inverse(self.source.layout.data)
        return tuple(inverse[p] for p in self.target.layout.data)

    @property
    def output_permute(self) -> tuple[int, ...]:
        """``np.transpose(y_target, output_permute)`` is the source's output layout."""
        inverse = _inverse(self.target.layout.output)
        return tuple(inverse[p] for p in self.source.layout.output)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The target's output after the crop, in the target's layout."""
        return _permuted(self.source.spec.input_shape, self.target.layout.output)

    def notes(self) -> list[str]:
        """Why each crop is there, per spatial dim."""
        result = []
        for i, (crop, want, have, dim) in enumerate(zip(self.crop, self.source.windows,
                                                        self.target.windows,
                                                        _dims(self.source.spec))):
            if crop == (0, 0):
                continue
            result.append(
                f"spatial dim {i}: the source keeps cells [{want[0]}, {want[1]}) of the "
                f"{dim.full}-cell full result, {self.target.call} keeps [{have[0]}, {have[1]}): "
                + _crop_words(crop))
        if result and _WHY.get(self.target.framework):
            result.append(_WHY[self.target.framework])
        return result

    def code(self) -> str:
        """Python that builds the target layer from the source's weight ``w`` and defines
        ``forward(x)`` (``x`` in the target's layout), crop included."""
        return _render(self.target, self.weight_transform, self)

    def to_dict(self) -> dict:
        spec = self.source.spec
        return {
            "from": self.source.framework, "to": self.target.framework,
            "source": {"call": self.source.call, "layer": _jsonable(self.source.kwargs),
                       "input_shape": list(self.source.input_shape),
                       "weight_shape": list(self.source.weight_shape),
                       "data_format": self.source.data_format,
                       "weight_format": self.source.weight_format},
            "call": self.target.call,
            "layer": _jsonable(self.target.kwargs),
            "input_shape": list(self.target.input_shape),
            "weight_shape": list(self.target.weight_shape),
            "data_format": self.target.data_format,
            "weight_format": self.target.weight_format,
            "weight_transform": self.weight_transform.to_dict(),
            "input_permute": list(self.input_permute),
            "crop": [list(c) for c in self.crop],
            "exact": self.exact,
            "output_shape": list(self.output_shape),
            "tconv": _spec_dict(spec),
            "notes": self.notes(),
        }


_WHY = {
    "torch": "torch.nn.ConvTransposeNd crops `padding` cells at both ends and adds output_padding "
             "cells at the end only, so it keeps only windows symmetric up to output_padding "
             "(keras-core#774, onnx2torch#52, #68).",
    "tf": "tf.nn.conv_transpose takes only an output_shape whose forward convolution gives the "
          "input size (output_padding < stride), and explicit padding in 2-d only.",
    "keras": "Keras has padding 'same'/'valid' and output_padding < stride only.",
    "onnx": "onnxruntime and onnx.reference require output_padding < stride.",
}


def _crop_words(crop: Pair) -> str:
    words = []
    for amount, side in zip(crop, ("start", "end")):
        if amount > 0:
            words.append(f"crop {amount} at the {side}")
        elif amount < 0:
            words.append(f"add {-amount} zero cells at the {side}")
    return ", ".join(words)


def convert(layer: Layer, to: str, *, transpose_kernel: bool = False,
            use_consistent_padding: bool = False) -> Conversion:
    """The ``to`` layer equal to ``layer``, with the smallest crop where it needs one.

    Parameters
    ----------
    layer : Layer
        From :func:`read` or a ``from_*`` function.
    to : str
        One of :data:`FRAMEWORKS`.
    transpose_kernel, use_consistent_padding : bool
        Options of the JAX / Flax target: write ``transpose_kernel=True`` (the kernel is then
        TF's filter, not flipped), or (JAX) forward-convolution padding pairs.

    Raises
    ------
    ConvSpecError
        When no layer of the target expresses it, with the reason.
    """
    to = _framework(to)
    options = {"transpose_kernel": transpose_kernel, "consistent": use_consistent_padding}
    target = read(to, **_WRITERS[to](layer.spec, options))
    crop = tuple(_crop(want, have) for want, have in zip(layer.windows, target.windows))
    return Conversion(layer, target, crop)


# -- the unified flags of `tconv convert` ---------------------------------------------------------

def from_flags(framework: str, *, input_size, kernel, in_channels: int = 1,
               out_channels: int = 1, stride=1, padding=None, output_padding=None,
               output_shape=None, dilation=1, groups: int = 1, auto_pad=None,
               transpose_kernel: bool = False, use_consistent_padding: bool = False,
               batch: int = 1) -> Layer:
    """The layer ``framework`` builds from framework-neutral words (those of ``tconv convert``).

    Sizes are spatial; the data layout is the framework's default (channels-last for TF, Keras,
    JAX, Flax). ``padding`` is in the framework's own words: ``"same"``/``"valid"`` (any case),
    an int or one per dim, ``(low, high)`` pairs per dim, or ONNX's ``2 * ndim`` pads. None is
    the framework's default (PyTorch 0, TF 'SAME', Keras 'valid', Flax 'SAME', ONNX no pads).
    """
    framework = _framework(framework)
    size = _shape("input size", _iterable(input_size))
    nd = len(size)
    k = _ints("kernel", kernel, nd)
    build = _FLAG_BUILDERS[framework]
    given = {"--output-padding": output_padding, "--output-shape": output_shape,
             "--auto-pad": auto_pad, "--transpose-kernel": transpose_kernel or None,
             "--consistent-padding": use_consistent_padding or None,
             "--groups": None if groups == 1 else groups}
    unsupported = [name for name, value in given.items()
                   if value is not None and name not in _FLAGS_TAKEN[framework]]
    if unsupported:
        raise ConvSpecError(f"{_FLAG_CALLS[framework]} has no {', '.join(unsupported)} "
                            f"({_FLAG_HINTS.get(framework, 'not a parameter of it')})")
    return build(size=size, k=k, c_in=in_channels, c_out=out_channels, stride=stride,
                 padding=padding, output_padding=output_padding, output_shape=output_shape,
                 dilation=dilation, groups=groups, auto_pad=auto_pad,
                 transpose_kernel=transpose_kernel, consistent=use_consistent_padding,
                 batch=batch)


_FLAGS_TAKEN = {
    "torch": ("--output-padding", "--output-shape", "--groups"),
    "tf": ("--output-shape",),
    "keras": ("--output-padding",),
    "jax": ("--transpose-kernel", "--consistent-padding", "--groups"),
    "flax": ("--transpose-kernel",),
    "onnx": ("--output-padding", "--output-shape", "--auto-pad", "--groups"),
}
_FLAG_CALLS = {"torch": "torch.nn.ConvTransposeNd", "tf": "tf.nn.conv_transpose",
               "keras": "keras.layers.ConvNDTranspose", "jax": "jax.lax.conv_transpose",
               "flax": "flax.linen.ConvTranspose", "onnx": "ONNX ConvTranspose"}
_FLAG_HINTS = {"tf": "its size is chosen by --output-shape; no groups",
               "keras": "its size is chosen by --padding and --output-padding; no groups",
               "jax": "its size is chosen by --padding",
               "flax": "its size is chosen by --padding; no groups"}


def _padding_words(padding):
    """``(mode, explicit)``: a lower-case string mode or None, and the explicit value."""
    if isinstance(padding, str):
        return padding.lower(), None
    return None, padding


def _flags_torch(size, k, c_in, c_out, stride, padding, output_padding, output_shape,
                 dilation, groups, batch, **_):
    mode, explicit = _padding_words(0 if padding is None else padding)
    if mode is not None or any(isinstance(p, Iterable) for p in _iterable(explicit)):
        raise ConvSpecError(f"torch.nn.ConvTransposeNd takes --padding as ints (it crops both "
                            f"ends alike), got {padding!r}")
    return from_torch((batch, c_in, *size), c_in, c_out, _compact(k), stride, explicit,
                      0 if output_padding is None else output_padding, groups, False, dilation,
                      output_size=output_shape)


def _flags_tf(size, k, c_in, c_out, stride, padding, output_shape, dilation, batch, **_):
    mode, explicit = _padding_words("same" if padding is None else padding)
    if mode is not None:
        tf_padding = mode.upper()
    else:
        pairs = _pairs("--padding", explicit, len(size), allow_negative=False)
        tf_padding = [[0, 0], *[list(p) for p in pairs], [0, 0]]
    shape = None if output_shape is None else [batch, *per_dim("--output-shape", output_shape,
                                                                 len(size)), c_out]
    return from_tf((batch, *size, c_in), (*k, c_out, c_in), shape, stride, tf_padding, None,
                   dilation)


def _flags_keras(size, k, c_in, c_out, stride, padding, output_padding, dilation, batch, **_):
    mode, _explicit = _padding_words("valid" if padding is None else padding)
    if mode is None:
        raise ConvSpecError(f"keras.layers.ConvNDTranspose takes --padding same or valid, got "
                            f"{padding!r}")
    return from_keras((batch, *size, c_in), c_out, _compact(k), stride, mode, output_padding,
                      None, dilation, False)


def _flags_jax(size, k, c_in, c_out, stride, padding, dilation, groups, transpose_kernel,
               consistent, batch, **_):
    if padding is None:
        raise ConvSpecError("jax.lax.conv_transpose has no default padding: give --padding same, "
                            "valid or (low:high) pairs")
    mode, explicit = _padding_words(padding)
    nd = len(size)
    lax_padding = mode.upper() if mode is not None else _pairs("--padding", explicit, nd, True)
    stride, dilation = _ints("--stride", stride, nd), _ints("--dilation", dilation, nd)
    if groups > 1 or nd > 3:
        if mode is not None or consistent or transpose_kernel:
            raise ConvSpecError(
                "with groups or more than 3 dims the JAX layer is lax.conv_general_dilated("
                "lhs_dilation=stride), which takes explicit (transposed) padding pairs only: no "
                "same/valid, --consistent-padding or --transpose-kernel")
        if groups < 1 or c_in % groups:
            raise ConvSpecError(f"--groups {groups} must divide --in-channels {c_in}")
        numbers = _LAX_DEFAULT.get(nd)
        layout = _lax_layout(_lax_specs(numbers, nd, "iota"), True)
        return from_jax(_permuted((batch, c_in, *size), layout.data),
                        _permuted((c_out, c_in // groups, *k), layout.weight), None, lax_padding,
                        dilation, numbers, window_strides=(1,) * nd, lhs_dilation=stride,
                        feature_group_count=groups)
    rhs = (*k, c_out, c_in) if transpose_kernel else (*k, c_in, c_out)
    return from_jax((batch, *size, c_in), rhs, stride, lax_padding, dilation, None,
                    transpose_kernel, consistent)


def _flags_flax(size, k, c_in, c_out, stride, padding, dilation, transpose_kernel, batch, **_):
    mode, explicit = _padding_words("same" if padding is None else padding)
    return from_flax((batch, *size, c_in), c_out, k, stride,
                     mode.upper() if mode is not None else explicit, dilation, False,
                     transpose_kernel)


def _flags_onnx(size, k, c_in, c_out, stride, padding, output_padding, output_shape, dilation,
                groups, auto_pad, batch, **_):
    nd = len(size)
    mode, explicit = _padding_words(padding)
    if mode is not None:
        raise ConvSpecError(f"ONNX ConvTranspose takes --padding as pads (ints) and the mode as "
                            f"--auto-pad SAME_UPPER/SAME_LOWER/VALID, got --padding {padding!r}")
    pads = None
    if explicit is not None:
        flat = tuple(_iterable(explicit))
        if len(flat) == 2 * nd and not any(isinstance(p, Iterable) for p in flat):
            pads = list(per_dim("--padding", flat, 2 * nd))
        else:
            pairs = _pairs("--padding", explicit, nd, allow_negative=False)
            pads = [lo for lo, _ in pairs] + [hi for _, hi in pairs]
    if groups < 1 or c_out % groups:
        raise ConvSpecError(f"ONNX ConvTranspose: --groups {groups} must divide --out-channels "
                            f"{c_out}")
    optional = {"output_padding": output_padding, "output_shape": output_shape}
    return from_onnx((batch, c_in, *size), (c_in, c_out // groups, *k),
                     "NOTSET" if auto_pad is None else auto_pad.upper(), _list(dilation, nd),
                     groups, list(k), pads=pads, strides=_list(stride, nd),
                     **{k_: None if v is None else _list(v, nd) for k_, v in optional.items()})


_FLAG_BUILDERS = {"torch": _flags_torch, "tf": _flags_tf, "keras": _flags_keras,
                  "jax": _flags_jax, "flax": _flags_flax, "onnx": _flags_onnx}


# -- small helpers --------------------------------------------------------------------------------

def _iterable(value):
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def _list(value, nd: int) -> list[int]:
    return list(per_dim("value", value, nd))


def _pairs(name: str, value, count: int, allow_negative: bool) -> tuple[Pair, ...]:
    """An int, ``count`` ints or ``count`` (low, high) pairs, as pairs."""
    entries = _iterable(value)
    if len(entries) == 1 and count != 1 and not isinstance(entries[0], Iterable):
        entries = entries * count
    if len(entries) != count:
        raise ConvSpecError(f"{name} must have {count} entries (an int or a (low, high) pair "
                            f"each), got {value!r}")
    pairs = []
    for entry in entries:
        pair = tuple(_iterable(entry))
        pair = pair * 2 if len(pair) == 1 else pair
        if len(pair) != 2:
            raise ConvSpecError(f"{name} entries must be ints or (low, high) pairs, got {entry!r}")
        pair = per_dim(name, pair, 2)
        if not allow_negative and min(pair) < 0:
            raise ConvSpecError(f"{name} must be >= 0, got {value!r}")
        pairs.append(pair)
    return tuple(pairs)


def _compact(values):
    """One int when every dim has the same value, else a tuple (PyTorch's, Keras' spelling)."""
    values = tuple(values)
    return values[0] if len(set(values)) == 1 else values


def _show(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(values) == 1 else str(values)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _spec_dict(spec: ConvSpec) -> dict:
    """The canonical description in transposed terms (the layer's input is ``y``)."""
    return {"input_shape": list(spec.output_shape), "weight_shape": list(spec.weight_shape),
            "stride": list(spec.stride), "padding": [list(p) for p in spec.padding],
            "output_padding": list(spec.output_padding), "dilation": list(spec.dilation),
            "groups": spec.groups, "output_shape": list(spec.input_shape),
            "windows": [list(w) for w in windows(spec)],
            "call": _tconv_call(spec)}


def _tconv_call(spec: ConvSpec) -> str:
    return (f"tconv.conv_transpose(y, w, stride={spec.stride}, padding={spec.padding}, "
            f"output_padding={spec.output_padding}, dilation={spec.dilation}, "
            f"groups={spec.groups})")


# -- code -----------------------------------------------------------------------------------------

class _Code(str):
    """Code text that :func:`_call_text` writes as it is, not as a string literal."""

    def __repr__(self) -> str:
        return str(self)


def _call_text(func: str, args: list[str], kwargs: dict, indent: str = "",
               width: int | None = 96) -> str:
    """``func(arg, ..., key=value!r, ...)`` on one line, or one argument per line when longer
    than ``width`` (None: never)."""
    parts = list(args) + [f"{k}={v!r}" for k, v in kwargs.items()]
    line = f"{func}({', '.join(parts)})"
    if width is None or len(indent) + len(line) <= width:
        return line
    return f"{func}(\n" + "".join(f"{indent}    {p},\n" for p in parts) + f"{indent})"


def _installed(package: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(package) is not None


def _render(layer: Layer, transform: WeightTransform, conversion: Conversion | None,
            runnable: bool = False) -> str:
    """The snippet: imports, ``weight`` from the source's ``w``, the layer, and ``forward(x)``
    with the crop. ``runnable`` writes Flax as the lax call it makes when Flax is missing."""
    nd = layer.spec.ndim
    crop = conversion.crop if conversion is not None else ((0, 0),) * nd
    renderer = _CODE[layer.framework]
    if runnable and layer.framework == "flax" and not _installed("flax"):
        renderer = _code_flax_via_lax
    imports, setup, call = renderer(layer, crop)
    out_shape = conversion.output_shape if conversion is not None else layer.output_shape
    lines = []
    if conversion is not None:
        source = conversion.source
        if source.data_format != layer.data_format:
            lines.append(f"# data: {source.data_format} -> {layer.data_format}: x = np.transpose("
                         f"x_{source.framework}, {conversion.input_permute})")
    lines += ["import numpy as np", *imports, ""]
    if conversion is not None:
        lines.append(f"# weight: {NAMES[conversion.source.framework]} "
                     f"{conversion.source.weight_format} -> {NAMES[layer.framework]} "
                     f"{layer.weight_format}")
    lines += transform.code("w", "weight") + setup + [
        "", "", "def forward(x):",
        f'    """x: {layer.data_format} {_shape_text(layer.input_shape)} -> '
        f'{_shape_text(out_shape)}."""',
        f"    y = {call}",
        *[f"    {line}" for line in _crop_lines(layer, crop)],
        "    return y"]
    return "\n".join(lines) + "\n"


def _shape_text(shape) -> str:
    return "(N, " + ", ".join(str(v) for v in shape[1:]) + ")"


def _crop_lines(layer: Layer, crop) -> list[str]:
    """Lines applying ``crop`` to ``y`` (zeros added first, then the slice); ONNX has them in
    its graph."""
    if layer.framework == "onnx" or all(c == (0, 0) for c in crop):
        return []
    out = layer.layout.output
    pads = [(max(-lo, 0), max(-hi, 0)) for lo, hi in crop]
    cuts = [(max(lo, 0), max(hi, 0)) for lo, hi in crop]
    lines = [f"# crop {[list(c) for c in crop]}: cells off the start and end of each spatial "
             f"dim (negative: zeros added)"]
    if any(any(p) for p in pads):
        lines.append(_pad_code(layer.framework, [pads[p - 2] if p >= 2 else (0, 0) for p in out]))
    if any(any(c) for c in cuts):
        index = [_slice_text(*cuts[p - 2]) if p >= 2 else ":" for p in out]
        lines.append(f"y = y[{', '.join(index)}]")
    return lines


def _slice_text(low: int, high: int) -> str:
    return f"{low or ''}:{-high if high else ''}"


def _pad_code(framework: str, widths: list[Pair]) -> str:
    if framework == "torch":           # F.pad: (low, high) pairs from the last axis backwards
        flat = [v for pair in reversed(widths) for v in pair]
        while flat[-2:] == [0, 0]:
            flat = flat[:-2]
        return f"y = torch.nn.functional.pad(y, {flat})"
    nested = [list(w) for w in widths]
    return {"tf": f"y = tf.pad(y, {nested})", "keras": f"y = keras.ops.pad(y, {nested})"}.get(
        framework, f"y = jnp.pad(y, {tuple(widths)})")


def _code_torch(layer: Layer, crop):
    kwargs = {k: v for k, v in layer.kwargs.items() if k not in ("output_size", "padding_mode")}
    kwargs["bias"] = False
    call = "layer(torch.as_tensor(x))"
    if layer.args.get("output_size") is not None:
        call = f"layer(torch.as_tensor(x), output_size={list(layer.args['output_size'])})"
    return (["import torch"],
            [f"layer = {_call_text(layer.call, [], kwargs)}", "with torch.no_grad():",
             "    layer.weight.copy_(torch.as_tensor(weight))"], call)


def _code_tf(layer: Layer, crop):
    kwargs = {k: v for k, v in layer.kwargs.items() if v is not None}
    shape = list(layer.output_shape)
    if kwargs.get("output_shape") is not None and len(kwargs["output_shape"]) == len(shape):
        shape = list(kwargs["output_shape"])
    batch = layer.layout.output.index(0)
    kwargs["output_shape"] = _Code("[" + ", ".join(
        "x.shape[0]" if i == batch else str(v) for i, v in enumerate(shape)) + "]")
    return (["import tensorflow as tf"], ["filters = tf.constant(weight)"],
            _call_text("tf.nn.conv_transpose", ["x", "filters"], kwargs, "    "))


def _code_keras(layer: Layer, crop):
    kwargs = dict(layer.kwargs, use_bias=False)
    return (["import keras"],
            [f"layer = {_call_text(layer.call, [], kwargs)}",
             f"layer.build({(None, *layer.input_shape[1:])})", "layer.set_weights([weight])"],
            "layer(x)")


def _code_jax(layer: Layer, crop):
    kwargs = {k: v for k, v in layer.kwargs.items() if v is not None}
    if not kwargs.get("use_consistent_padding", True):
        del kwargs["use_consistent_padding"]           # the default; older jax lacks the name
    if layer.call.endswith("conv_general_dilated"):
        kwargs.setdefault("window_strides", (1,) * layer.spec.ndim)
    func = layer.call.replace("jax.lax.", "lax.")
    return (["import jax.numpy as jnp", "from jax import lax"], ["weight = jnp.asarray(weight)"],
            _call_text(func, ["x", "weight"], kwargs, "    "))


def _code_flax(layer: Layer, crop):
    kwargs = dict(layer.kwargs, use_bias=False)
    return (["import flax.linen as nn", "import jax.numpy as jnp"],
            [f"layer = {_call_text('nn.ConvTranspose', [], kwargs)}",
             'variables = {"params": {"kernel": jnp.asarray(weight)}}'],
            "layer.apply(variables, x)")


def _code_flax_via_lax(layer: Layer, crop):
    """flax.linen.ConvTranspose written as the lax call it makes (lax's default layout)."""
    kwargs, nd = layer.kwargs, layer.spec.ndim
    padding = kwargs["padding"]
    lax_kwargs = dict(
        strides=per_dim("strides", 1 if kwargs["strides"] is None else kwargs["strides"], nd),
        padding=padding if isinstance(padding, str) else _flax_pairs(padding, nd),
        rhs_dilation=per_dim("kernel_dilation", 1 if kwargs["kernel_dilation"] is None
                              else kwargs["kernel_dilation"], nd),
        transpose_kernel=kwargs["transpose_kernel"])
    return (["import jax.numpy as jnp", "from jax import lax"], ["weight = jnp.asarray(weight)"],
            _call_text("lax.conv_transpose", ["x", "weight"], lax_kwargs, "    "))


def _code_onnx(layer: Layer, crop):
    """A graph: the ConvTranspose node, then (only if the crop says so) Pad and Slice nodes."""
    from ..frameworks.onnx import IR_VERSION, OPSET

    attrs = {k: list(v) if isinstance(v, tuple) else v for k, v in layer.kwargs.items()
             if v is not None}
    node = _call_text("helper.make_node", ['"ConvTranspose"', '["x", "w"]', '["y"]'], attrs)
    setup = [f"nodes = [{node}]",
             'initializers = [numpy_helper.from_array(weight.astype(np.float32), "w")]']
    final = "y"
    pads = [(max(-lo, 0), max(-hi, 0)) for lo, hi in crop]
    cuts = [(max(lo, 0), max(hi, 0)) for lo, hi in crop]
    if any(any(p) for p in pads):
        flat = [0, 0] + [lo for lo, _ in pads] + [0, 0] + [hi for _, hi in pads]
        setup += [f"# zero cells added, [begins..., ends...] per axis (crop "
                  f"{[list(c) for c in crop]})",
                  f'initializers.append(numpy_helper.from_array(np.array({flat}, np.int64), '
                  f'"pads"))',
                  f'nodes.append(helper.make_node("Pad", ["{final}", "pads"], ["padded"]))']
        final = "padded"
    if any(any(c) for c in cuts):
        dims = [i for i, c in enumerate(cuts) if any(c)]
        values = {"starts": [cuts[i][0] for i in dims],
                  "ends": [-cuts[i][1] if cuts[i][1] else np.iinfo(np.int64).max for i in dims],
                  "axes": [i + 2 for i in dims]}
        setup.append(f"# crop {[list(c) for c in crop]}: cells off the start and end of each "
                     f"spatial dim")
        setup += [f'initializers.append(numpy_helper.from_array(np.array({v}, np.int64), '
                  f'"{name}"))' for name, v in values.items()]
        setup.append(f'nodes.append(helper.make_node("Slice", ["{final}", "starts", "ends", '
                     f'"axes"], ["cropped"]))')
        final = "cropped"
    x_shape = ["N", *layer.input_shape[1:]]
    setup += [
        'graph = helper.make_graph(',
        '    nodes, "tconv_convert",',
        f'    [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, {x_shape})],',
        f'    [helper.make_tensor_value_info("{final}", onnx.TensorProto.FLOAT, None)],',
        '    initializers)',
        f'model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", {OPSET})], '
        f'ir_version={IR_VERSION})',
        'session = onnxruntime.InferenceSession(model.SerializeToString(), '
        'providers=["CPUExecutionProvider"])']
    return (["import onnx", "import onnxruntime", "from onnx import helper, numpy_helper"], setup,
            'session.run(None, {"x": np.asarray(x, dtype=np.float32)})[0]')


_CODE = {"torch": _code_torch, "tf": _code_tf, "keras": _code_keras, "jax": _code_jax,
         "flax": _code_flax, "onnx": _code_onnx}


# -- checking with the real frameworks ------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """The source layer and the converted target run by their frameworks on the same data.

    Attributes
    ----------
    passed : bool
        Both equal tconv's float64 result within the float32 rounding bound, cell by cell.
    max_diff : float
        ``max |source - target|``.
    source_error, target_error : float
        ``max |result - tconv|`` of each side.
    bound : float
        The largest per-cell rounding bound (it scales with the terms summed and their sizes).
    reason : str or None
        Why a side did not run (then ``passed`` is False and the numbers are None).
    source_way, target_way : str
        What ran each side.
    """

    passed: bool
    max_diff: float | None = None
    source_error: float | None = None
    target_error: float | None = None
    bound: float | None = None
    reason: str | None = None
    source_way: str = ""
    target_way: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


#: the package each framework's check imports
_PACKAGES = {"torch": "torch", "tf": "tensorflow", "keras": "keras", "jax": "jax",
             "flax": "jax", "onnx": "onnxruntime"}


def _cannot_run(layer: Layer) -> str | None:
    """Why this machine cannot run ``layer``: a missing framework or a CPU kernel's limit."""
    package = _PACKAGES[layer.framework]
    if not _installed(package):
        return f"{package} is not installed"
    if layer.framework in ("tf", "keras"):
        if layer.layout.data[-1] != 1:
            return (f"TensorFlow's CPU kernel takes channels-last data only ('only supports "
                    f"NHWC'); this layer is {layer.data_format}")
        if any(d > 1 for d in layer.spec.dilation):
            return (f"TensorFlow's CPU kernel rejects dilation {_show(layer.spec.dilation)} "
                    f"('Current CPU implementations do not yet support dilation rates larger "
                    f"than 1', tensorflow#69103)")
    return None


def _way(layer: Layer) -> str:
    if layer.framework == "flax" and not _installed("flax"):
        return "lax.conv_transpose, as flax.linen.ConvTranspose calls it (flax is not installed)"
    return layer.call


def _run(layer: Layer, code: str, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Execute a rendered snippet and return ``forward(x)`` as a NumPy array."""
    if layer.framework in ("tf", "keras"):
        from ..frameworks.tensorflow import import_tf

        import_tf()                             # quiet, with small thread pools
    namespace = {"w": w}
    exec(compile(code, f"<tconv convert: {layer.call}>", "exec"), namespace)
    y = namespace["forward"](x)
    if hasattr(y, "detach"):
        y = y.detach().cpu()
    if hasattr(y, "numpy"):
        y = y.numpy()
    return np.asarray(y)


def check(conversion: Conversion, *, seed: int = 0) -> Check:
    """Run the source layer and the converted target with the installed frameworks.

    Both run the code tconv prints (:meth:`Layer.code`, :meth:`Conversion.code`: weight
    transform and crop included) on the same random float32 data, and both are compared with
    tconv's float64 transposed convolution of the canonical spec.
    """
    from ..ops import transpose
    from ..verify import error_bound

    source, target = conversion.source, conversion.target
    for layer in (source, target):
        why = _cannot_run(layer)
        if why:
            return Check(False, reason=f"{layer.call} not run: {why}", source_way=_way(source),
                         target_way=_way(target))
    spec = source.spec
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(spec.output_shape).astype(np.float32)     # the layer's input
    w = rng.standard_normal(spec.weight_shape).astype(np.float32)     # tconv's weight layout
    w_source = WeightTransform.between(_plain(spec.ndim), source.layout, spec.groups).apply(w)
    exact = transpose(y.astype(np.float64), w.astype(np.float64), spec, "gemm")
    bound = error_bound(y, w, spec, exact, np.float32)
    results = {}
    runs = (("source", source, _render(source, WeightTransform(_identity(spec.ndim)), None,
                                        runnable=True)),
            ("target", target, _render(target, conversion.weight_transform, conversion,
                                        runnable=True)))
    for name, layer, code in runs:
        x = np.ascontiguousarray(np.transpose(y, layer.layout.data))
        try:
            out = _run(layer, code, w_source, x)
        except Exception as error:      # the framework refused the layer: say so, don't crash
            first = (str(error).strip().splitlines() or [""])[0][:300]
            return Check(False, reason=f"{layer.call} raised {type(error).__name__}: {first}",
                         source_way=_way(source), target_way=_way(target))
        if out.ndim == len(exact.shape):
            out = np.transpose(out, _inverse(layer.layout.output))
        if out.shape != exact.shape:
            return Check(False, reason=f"the {name} gave shape {out.shape} (in tconv's layout), "
                                       f"expected {exact.shape}",
                         source_way=_way(source), target_way=_way(target))
        results[name] = out.astype(np.float64)
    errors = {name: np.abs(r - exact) for name, r in results.items()}
    return Check(all(bool(np.all(e <= bound)) for e in errors.values()),
                 float(np.abs(results["source"] - results["target"]).max()),
                 float(errors["source"].max()), float(errors["target"].max()), float(bound.max()),
                 None, _way(source), _way(target))
