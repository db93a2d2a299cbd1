"""`ConvSpec`: the parameters of one convolution, parsed once, and all of its shape arithmetic.

A spec always describes the *forward* convolution ``y = conv(x, w)``::

    x : (N, C_in, *input_size)          the forward input  = the transposed output
    w : (C_out, C_in / groups, *kernel)  the forward weight = the transposed weight
    y : (N, C_out, *output_size)        the forward output = the transposed input

The transposed convolution of the same spec maps ``y`` back to the shape of ``x``; it is the
adjoint (the input gradient) of the forward convolution. Per spatial dimension, with
``P = pad_low + pad_high`` and the dilated kernel extent ``K = dilation * (kernel - 1) + 1``::

    forward:     out = floor((in + P - K) / stride) + 1
    transposed:  in  = (out - 1) * stride - P + K + output_padding

The floor in the forward formula drops up to ``stride - 1`` trailing rows of ``x``; the
``output_padding`` of the transposed convolution restores them. A spec stores the input size and
the output padding, and the output size follows exactly (the division is exact by construction).
PyTorch also allows ``stride <= output_padding < dilation``: then ``x`` has cells past the last
kernel placement the forward convolution would make, and the spec's forward convolution is the
one whose output is cropped to ``output_size`` (the transposed convolution is its adjoint).

Every other module takes its sizes from here: this file is the one place for shape arithmetic.
"""
from __future__ import annotations

import math
import numbers
from collections import abc
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["ConvSpec", "ConvSpecError", "SizeRange", "INT64_MAX"]


class ConvSpecError(ValueError):
    """An invalid convolution parameter; the message names the parameter and the values.

    ``parameter`` is the parameter's name (a Python argument such as ``"stride"`` or a flag such
    as ``"--stride"``): given by the raiser, or else the name the message starts with (tconv's
    messages start with it: ``"stride must be >= 1 ..."``, ``"groups=3 must divide ..."``).
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter if parameter is not None else _named_first(message)


def _named_first(message: str) -> str | None:
    """The parameter a message names first, if it starts with one."""
    import re

    match = re.match(r"(--[a-z][a-z-]*|[A-Za-z_][A-Za-z_0-9]*)", message)
    if match is None:
        return None
    word = match.group(1)
    return word if word.startswith("--") or word in _PARAMETERS else None


#: The names of the public functions' parameters (and the shapes they check).
_PARAMETERS = ("x", "y", "w", "grad_output", "input", "weight", "stride", "padding", "dilation",
               "groups", "output_padding", "output_size", "kernel", "method", "dtype",
               "input_shape", "weight_shape")


Pair = tuple[int, int]


# -- parsing ------------------------------------------------------------------------------------

#: The largest size or parameter a spec holds: NumPy indexes with int64, so every value, every
#: derived size and every element count must stay at or below it.
INT64_MAX = 2**63 - 1


def _as_int(name: str, value) -> int:
    """One integer parameter value; bools, floats and strings are refused, not coerced, and so
    is a value beyond int64 (NumPy could not index with it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConvSpecError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not -INT64_MAX <= value <= INT64_MAX:
        raise ConvSpecError(f"{name}={value} is beyond int64 (at most 2**63 - 1 = {INT64_MAX})")
    return value


def _scalar(value):
    """A 0-d array or tensor as its Python scalar (it is iterable only in name)."""
    return value.item() if getattr(value, "ndim", None) == 0 else value


def per_dim(name: str, value, ndim: int) -> tuple[int, ...]:
    """An int, or one int per spatial dim, as a tuple of length ``ndim``."""
    value = _scalar(value)
    if isinstance(value, (str, bytes)):
        raise ConvSpecError(f"{name} must be an int or {ndim} ints, got {value!r}")
    if isinstance(value, Iterable):
        values = tuple(value)
        if len(values) != ndim:
            raise ConvSpecError(
                f"{name} must be an int or {ndim} ints (one per spatial dim), "
                f"got {len(values)} values {values!r}")
        return tuple(_as_int(name, v) for v in values)
    return (_as_int(name, value),) * ndim


def at_least(name: str, values: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """``values``, or a ConvSpecError naming ``name`` if one is below ``minimum``."""
    if any(v < minimum for v in values):
        raise ConvSpecError(f"{name} must be >= {minimum} in every dim, got {_show(values)}")
    return values


def _padding_pairs(value, ndim: int) -> tuple[Pair, ...]:
    """Explicit padding as one (low, high) pair per dim: int, per-dim ints or per-dim pairs."""
    value = _scalar(value)
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        entries = tuple(value)
        if len(entries) != ndim:
            raise ConvSpecError(
                f"padding must be an int, {ndim} ints or {ndim} (low, high) pairs, "
                f"got {len(entries)} values {entries!r}")
        pairs = []
        for entry in entries:
            if isinstance(entry, Iterable) and not isinstance(entry, (str, bytes)):
                pair = tuple(entry)
                if len(pair) != 2:
                    raise ConvSpecError(f"padding pairs must be (low, high), got {pair!r}")
                pairs.append((_as_int("padding", pair[0]), _as_int("padding", pair[1])))
            else:
                p = _as_int("padding", entry)
                pairs.append((p, p))
    else:
        p = _as_int("padding", value)
        pairs = [(p, p)] * ndim
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        raise ConvSpecError(f"padding must be >= 0, got {_show(tuple(pairs))}")
    return tuple(pairs)


def _padding_mode(value) -> str | None:
    """'same' / 'valid' (any case) or None for explicit padding."""
    if isinstance(value, str):
        mode = value.lower()
        if mode not in ("same", "valid"):
            raise ConvSpecError(f"padding must be 'same', 'valid' or integers, got {value!r}")
        return mode
    return None


def _shape(name: str, value, ndim: int | None = None) -> tuple[int, ...]:
    try:
        shape = tuple(_as_int(name, v) for v in value)
    except TypeError:
        raise ConvSpecError(f"{name} must be a sequence of ints, got {value!r}") from None
    if ndim is not None and len(shape) != ndim:
        raise ConvSpecError(f"{name} must have {ndim} entries, got {shape}")
    if any(v < 0 for v in shape):
        raise ConvSpecError(f"{name} must not contain negative sizes, got {shape}")
    return shape


def _show(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(values) == 1 else str(values)


def _show_padding(pads) -> str:
    """Pairs as per-dim ints where low == high: ``(1, 1)`` rather than ``((1, 1), (1, 1))``."""
    if all(lo == hi for lo, hi in pads):
        return _show(lo for lo, _ in pads)
    return _show(pads)


# -- the scalar formulas (per spatial dim) -----------------------------------------------------

def _extent(kernel: int, dilation: int) -> int:
    """Span of a dilated kernel: dilation * (kernel - 1) + 1."""
    return dilation * (kernel - 1) + 1


def _room(size: int, kernel: int, padding: Pair, dilation: int, dim: int | None = None) -> int:
    """Cells past the first kernel placement, ``size + P - K``; negative is an error."""
    room = size + padding[0] + padding[1] - _extent(kernel, dilation)
    if room < 0:
        where = "" if dim is None else f" in spatial dim {dim}"
        raise ConvSpecError(
            f"kernel size {kernel} (dilated extent {_extent(kernel, dilation)}) is larger than "
            f"the padded input {size}+{padding[0]}+{padding[1]}={size + sum(padding)}{where}")
    return room


def _same_padding(size: int, kernel: int, stride: int, dilation: int,
                  odd_low: bool = False) -> Pair:
    """'same': out = ceil(size / stride); the odd pixel of padding goes on the high side
    (``odd_low``: on the low side, ONNX's SAME_LOWER)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + _extent(kernel, dilation) - size, 0)
    return _split(total, odd_low)


def _split(total: int, odd_low: bool) -> Pair:
    """Split ``total`` padding cells into ``(low, high)`` halves, the odd cell high (or low)."""
    small = total // 2
    return (total - small, small) if odd_low else (small, total - small)


# -- the spec -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConvSpec:
    """All parameters of one convolution and the shape arithmetic of it and its transpose.

    Build it with :meth:`forward` (from the input of a forward convolution) or :meth:`transpose`
    (from the input of a transposed convolution); both validate everything and raise
    :class:`ConvSpecError` naming the parameter and the values.

    Attributes
    ----------
    input_shape : tuple
        ``(N, C_in, *input_size)`` of the forward input (= the transposed output).
    weight_shape : tuple
        ``(C_out, C_in // groups, *kernel_size)``.
    stride, dilation : tuple of int
        One per spatial dim, each >= 1.
    padding : tuple of (int, int)
        ``(low, high)`` zero padding of the forward input per spatial dim.
    groups : int
    output_padding : tuple of int
        The trailing input rows the forward stride does not reach, per dim.

    Examples
    --------
    The original experiment: a 4x4 input, a 3x3 kernel, stride 2, padding 1.

    >>> spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
    >>> spec.output_shape, spec.output_padding
    ((1, 1, 2, 2), (1, 1))
    """

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[Pair, ...]
    dilation: tuple[int, ...]
    groups: int
    output_padding: tuple[int, ...]

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def forward(cls, input_shape, weight_shape, *, stride=1, padding=0, dilation=1,
                groups=1, output_padding=None) -> "ConvSpec":
        """The spec of ``conv(x, w)`` for ``x.shape == input_shape``, ``w.shape == weight_shape``.

        ``padding`` may be an int, one int per dim, one ``(low, high)`` pair per dim, ``"valid"``
        or ``"same"`` (output size ``ceil(in / stride)``, the odd pixel on the high side).
        ``output_padding`` is normally derived (the rows the stride drops); give it only to
        describe a transposed convolution whose output_padding reaches past the stride (allowed
        up to dilation - 1), whose input the forward convolution reads only in part.
        """
        weight_shape, ndim, stride, dilation, groups = _common(weight_shape, stride, dilation,
                                                                groups)
        input_shape = _shape("input shape", input_shape)
        _check_rank("input", input_shape, ndim)
        size = input_shape[2:]
        mode = _padding_mode(padding)
        kernel = weight_shape[2:]
        if mode == "same":
            pads = tuple(_same_padding(n, k, s, d) if n >= 1 else (0, 0)
                         for n, k, s, d in zip(size, kernel, stride, dilation))
        elif mode == "valid":
            pads = ((0, 0),) * ndim
        else:
            pads = _padding_pairs(padding, ndim)
        _check_channels(input_shape[1], weight_shape, groups, "input")
        _check_sizes("input", size)
        room = tuple(_room(n, k, p, d, i) for i, (n, k, p, d) in
                     enumerate(zip(size, kernel, pads, dilation)))
        if output_padding is None:
            op = tuple(r % s for r, s in zip(room, stride))
        else:
            op = at_least("output_padding", per_dim("output_padding", output_padding, ndim), 0)
            for i, (o, r, s, d) in enumerate(zip(op, room, stride, dilation)):
                if o >= max(s, d) or o > r or (r - o) % s:
                    raise ConvSpecError(
                        f"output_padding={_show(op)} does not fit input size {_show(size)}: in "
                        f"spatial dim {i} it must be < max(stride, dilation) = {max(s, d)} and "
                        f"leave a multiple of the stride {s} of the {r} cells past the first "
                        f"kernel placement")
        return cls(input_shape, weight_shape, stride, pads, dilation, groups, op)

    @classmethod
    def transpose(cls, input_shape, weight_shape, *, stride=1, padding=0, output_padding=0,
                  dilation=1, groups=1, output_size=None) -> "ConvSpec":
        """The spec of ``conv_transpose(y, w)`` for ``y.shape == input_shape``.

        ``weight_shape`` is ``(C_in, C_out // groups, *kernel)`` in transposed terms, which is the
        forward weight layout. ``padding`` is the forward padding (it crops the full result);
        ``output_padding`` adds rows on the high side; ``output_size`` (spatial, or the whole
        ``(N, C, *spatial)``) picks ``output_padding`` for you. ``"same"`` means the forward
        'same' convolution of the result: size ``in * stride`` unless ``output_size`` says
        otherwise.
        """
        weight_shape, ndim, stride, dilation, groups = _common(weight_shape, stride, dilation,
                                                                groups)
        y_shape = _shape("input shape", input_shape)
        _check_rank("input", y_shape, ndim)
        kernel = weight_shape[2:]
        if y_shape[1] != weight_shape[0]:
            raise ConvSpecError(
                f"weight.shape[0]={weight_shape[0]} must equal the input channels "
                f"{y_shape[1]} of the transposed convolution (weight is (C_in, C_out/groups, *k))")
        if weight_shape[0] % groups:
            raise ConvSpecError(
                f"groups={groups} must divide the input channels {weight_shape[0]}")
        _check_sizes("input", y_shape[2:])
        out = y_shape[2:]
        target = None
        if output_size is not None:
            target = _shape("output_size", output_size)
            if len(target) == ndim + 2:
                target = target[2:]
            if len(target) != ndim:
                raise ConvSpecError(
                    f"output_size must have {ndim} spatial sizes (or {ndim + 2} with N and C), "
                    f"got {tuple(output_size)}")
        op_given = at_least("output_padding", per_dim("output_padding", output_padding, ndim),
                             0)
        mode = _padding_mode(padding)
        if mode == "same":
            if target is None:   # the size 'same' promises; output_padding follows from it
                target = tuple(o * s for o, s in zip(out, stride))
            size = target
            pads = tuple(_same_padding(n, k, s, d)
                         for n, k, s, d in zip(size, kernel, stride, dilation))
            for i, (n, o, s) in enumerate(zip(size, out, stride)):
                if -(-n // s) != o:
                    raise ConvSpecError(
                        f"output_size={_show(size)} is unreachable with padding='same': "
                        f"ceil({n}/{s}) != input size {o} in spatial dim {i}")
        else:
            pads = ((0, 0),) * ndim if mode == "valid" else _padding_pairs(padding, ndim)
        base = tuple(cls.transposed_size(o, k, s, p, d, 0)
                     for o, k, s, p, d in zip(out, kernel, stride, pads, dilation))
        if target is not None:
            op = tuple(t - b for t, b in zip(target, base))
            if any(op_given) and op_given != op:
                raise ConvSpecError(
                    f"output_padding={_show(op_given)} contradicts output_size={_show(target)} "
                    f"(which needs output_padding={_show(op)}); give one of them")
        else:
            op = op_given
        limit = tuple(max(s, d) for s, d in zip(stride, dilation))
        for i, (p, lim) in enumerate(zip(op, limit)):
            if not 0 <= p < lim:
                if target is not None:
                    lo, hi = base[i], base[i] + lim - 1
                    raise ConvSpecError(
                        f"output_size={_show(target)} is unreachable: spatial dim {i} can be "
                        f"{lo}..{hi} for input size {out[i]}, stride {stride[i]}, "
                        f"padding {pads[i]}, dilation {dilation[i]}, kernel {kernel[i]}")
                raise ConvSpecError(
                    f"output_padding={_show(op)} out of range: each must be smaller than "
                    f"stride or dilation, here < {_show(limit)}")
        size = tuple(b + p for b, p in zip(base, op))
        for i, n in enumerate(size):
            if n < 1:
                raise ConvSpecError(
                    f"padding={_show_padding(pads)} crops the whole output: spatial dim {i} would "
                    f"have size {n}")
        x_shape = (y_shape[0], weight_shape[1] * groups) + size
        return cls(x_shape, weight_shape, stride, pads, dilation, groups, op)

    def __post_init__(self) -> None:
        """Every size NumPy will allocate or index with fits int64: the shapes, their element
        counts, the padded input and the uncropped transposed result of every dim."""
        for name, shape in (("x shape (the forward input, the transposed output)",
                             self.input_shape),
                            ("weight shape", self.weight_shape),
                            ("y shape (the forward output, the transposed input)",
                             self.output_shape)):
            count = math.prod(shape)
            if max(shape) > INT64_MAX or count > INT64_MAX:
                raise ConvSpecError(
                    f"{name} {shape} ({count} elements) is beyond int64 (at most 2**63 - 1 "
                    f"per size and in all): {self._parameters()}")
        for i, (n, (lo, hi), c) in enumerate(zip(self.input_size, self.padding,
                                                 self.canvas_size)):
            for what, size in (("padded input size", n + lo + hi),
                               ("uncropped transposed size", c)):
                if size > INT64_MAX:
                    raise ConvSpecError(
                        f"the {what} {size} of spatial dim {i} is beyond int64 (at most "
                        f"2**63 - 1): {self._parameters()}")

    def _parameters(self) -> str:
        return (f"input {self.input_shape}, weight {self.weight_shape}, stride "
                f"{_show(self.stride)}, padding {_show_padding(self.padding)}, dilation "
                f"{_show(self.dilation)}, output_padding {_show(self.output_padding)}")

    # -- the scalar shape formulas, one per fact -----------------------------------------------

    @staticmethod
    def conv_size(size: int, kernel: int, stride: int, padding: Pair, dilation: int) -> int:
        """Forward output size of one dim: floor((size + P - K) / stride) + 1."""
        return _room(size, kernel, padding, dilation) // stride + 1

    @staticmethod
    def transposed_size(size: int, kernel: int, stride: int, padding: Pair, dilation: int,
                        output_padding: int = 0) -> int:
        """Transposed output size of one dim: (size - 1) * stride - P + K + output_padding."""
        return ((size - 1) * stride - padding[0] - padding[1] + _extent(kernel, dilation)
                + output_padding)

    @staticmethod
    def full_size(size: int, kernel: int, stride: int, dilation: int) -> int:
        """Size of the uncropped transposed result: (size - 1) * stride + K."""
        return (size - 1) * stride + _extent(kernel, dilation)

    @staticmethod
    def extent(kernel: int, dilation: int) -> int:
        """Span of a dilated kernel, dilation * (kernel - 1) + 1."""
        return _extent(kernel, dilation)

    @staticmethod
    def same_padding(size: int, kernel: int, stride: int, dilation: int = 1,
                     odd_low: bool = False) -> Pair:
        """The ``(low, high)`` padding of 'same' for one dim: output ``ceil(size / stride)``,
        total ``max((out - 1) * stride + K - size, 0)``, the odd cell high (TF's 'SAME', ONNX's
        SAME_UPPER) or, with ``odd_low``, low (ONNX's SAME_LOWER)."""
        return _same_padding(size, kernel, stride, dilation, odd_low)

    @staticmethod
    def split_padding(total: int, odd_low: bool = False) -> Pair:
        """``total`` padding cells as ``(low, high)`` halves, the odd cell high (or low)."""
        return _split(total, odd_low)

    @staticmethod
    def output_paddings_splitting_to(low: int, base: int, stride: int,
                                     odd_low: bool = False) -> list[int]:
        """The output_paddings ``c`` in ``[0, stride)`` for which ``base + c`` padding cells split
        (:meth:`split_padding`) with ``low`` at the start, ascending: how an output_padding
        chooses the halves of a derived total padding (ONNX's output_shape and SAME forms).

        At most two totals split to one ``low``, so this costs O(1) whatever the stride.

        >>> ConvSpec.output_paddings_splitting_to(1, -1, 4)
        [3]
        >>> ConvSpec.output_paddings_splitting_to(1, -1, 4, odd_low=True)
        [2, 3]
        """
        return [t - base for t in range(max(2 * low - 1, 0), 2 * low + 2)
                if 0 <= t - base < stride and _split(t, odd_low)[0] == low]

    @staticmethod
    def split_lows(base: int, stride: int, odd_low: bool = False) -> range:
        """Every start padding :meth:`output_paddings_splitting_to` can reach: the low halves of the
        totals ``base + c >= 0`` for ``c`` in ``[0, stride)``, as a range (they have no gaps)."""
        first, last = max(base, 0), base + stride - 1
        if last < first:
            return range(0)
        return range(_split(first, odd_low)[0], _split(last, odd_low)[0] + 1)

    @staticmethod
    def tap_slices(tap, stride, dilation, count) -> tuple[slice, ...]:
        """Where one kernel tap meets the (padded) input over ``count`` output positions.

        Output position ``p`` puts tap ``j`` at ``p*stride + j*dilation``, so the cells tap ``j``
        meets are ``slice(j*dilation, j*dilation + stride*(count-1) + 1, stride)`` per dim: the
        forward convolution reads them, the transposed one adds into them.
        """
        return tuple(slice(j * d, j * d + s * (m - 1) + 1, s)
                     for j, d, s, m in zip(tap, dilation, stride, count))

    # -- derived facts of this spec -----------------------------------------------------------

    @property
    def ndim(self) -> int:
        """Number of spatial dims."""
        return len(self.weight_shape) - 2

    @property
    def batch(self) -> int:
        return self.input_shape[0]

    @property
    def in_channels(self) -> int:
        return self.input_shape[1]

    @property
    def out_channels(self) -> int:
        return self.weight_shape[0]

    @property
    def input_size(self) -> tuple[int, ...]:
        return self.input_shape[2:]

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self.weight_shape[2:]

    @property
    def padded_input_size(self) -> tuple[int, ...]:
        """The input's spatial size inside its zero border (``padding``): what the forward
        convolution slides over."""
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.input_size, self.padding))

    @property
    def output_size(self) -> tuple[int, ...]:
        """Forward output spatial size; exact because output_padding is the division's rest."""
        return tuple(
            (n - _extent(k, d) - op) // s + 1
            for n, k, d, op, s in zip(self.padded_input_size, self.kernel_size, self.dilation,
                                      self.output_padding, self.stride))

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.batch, self.out_channels) + self.output_size

    @property
    def extents(self) -> tuple[int, ...]:
        """Dilated kernel extent per dim."""
        return tuple(_extent(k, d) for k, d in zip(self.kernel_size, self.dilation))

    @property
    def full_output_size(self) -> tuple[int, ...]:
        """Transposed result before the padding crop and without output_padding."""
        return tuple(self.full_size(o, k, s, d) for o, k, s, d in
                     zip(self.output_size, self.kernel_size, self.stride, self.dilation))

    def input_shape_with(self, outer) -> tuple[int, ...]:
        """The transposed output (:attr:`input_shape`) with ``outer[i] = (low, high)`` zero
        cells added at both ends of spatial dim ``i``: what a layer whose padding reaches past
        its kernel's reach returns."""
        if not outer:
            return self.input_shape
        return self.input_shape[:2] + tuple(n + lo + hi for n, (lo, hi) in
                                            zip(self.input_size, outer))

    @property
    def canvas_size(self) -> tuple[int, ...]:
        """What the scatter writes on: the full transposed result extended by output_padding on
        the high side. ``x`` is its window :attr:`input_window`."""
        return tuple(m + op for m, op in zip(self.full_output_size, self.output_padding))

    def tap_window(self, tap) -> tuple[slice, ...]:
        """The cells of the padded input (= of the canvas) kernel tap ``tap`` meets at every
        output position (:meth:`tap_slices` with this spec's stride, dilation and output)."""
        return self.tap_slices(tap, self.stride, self.dilation, self.output_size)

    def window(self, position) -> tuple[slice, ...]:
        """The cells of the padded input the kernel covers at output ``position``: from
        ``position*stride``, ``extent`` long, every ``dilation``-th cell."""
        return tuple(slice(p * s, p * s + e, d) for p, s, e, d in
                     zip(position, self.stride, self.extents, self.dilation))

    def stamp(self, position) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
        """The kernel taps of output ``position`` whose copies land inside ``x``, and the
        cells of ``x`` they land on: ``(taps, cells)``, or None when every tap falls into the
        padding.

        Tap ``j`` of position ``p`` meets ``x[p*stride + j*dilation - pad_low]`` (padded cell
        ``p*stride + j*dilation``, :meth:`window`); per dim the taps inside ``x`` are
        ``j0 <= j < j1`` with ``0 <= p*stride + j*dilation - pad_low < input_size``.
        """
        taps, cells = [], []
        for p, s, d, k, (lo, _), n in zip(position, self.stride, self.dilation,
                                           self.kernel_size, self.padding, self.input_size):
            first = p * s - lo                       # where tap 0 lands in x
            j0 = max(0, -(first // d))               # first tap with first + j*d >= 0
            j1 = min(k, -((first - n) // d))         # past the last with first + j*d < n
            if j0 >= j1:
                return None
            taps.append(slice(j0, j1))
            cells.append(slice(first + j0 * d, first + (j1 - 1) * d + 1, d))
        return tuple(taps), tuple(cells)

    @property
    def output_padding_exceeds_stride(self) -> bool:
        """Whether some dim has ``output_padding >= stride`` (allowed below the dilation).

        Then ``x`` has cells past the last kernel placement of the forward convolution: the
        forward output of an ``x`` of this size is larger than ``y``, so the frameworks that
        take the input size (or an output shape) instead of output_padding cannot say it.
        """
        return any(op >= s for op, s in zip(self.output_padding, self.stride))

    @property
    def transpose_padding(self) -> tuple[Pair, ...]:
        """Padding of the zero-inserted gradient in the equivalent ordinary convolution.

        Low: ``K - 1 - pad_low``; high: ``K - 1 - pad_high + output_padding``. Negative values
        mean cropping (when the forward padding exceeds the kernel extent).
        """
        return tuple((e - 1 - lo, e - 1 - hi + op) for e, (lo, hi), op in
                     zip(self.extents, self.padding, self.output_padding))

    @property
    def input_window(self) -> tuple[slice, ...]:
        """Where ``x`` sits inside the full (uncropped, output-padded) transposed result, and
        inside the padded forward input: ``pad_low`` cells in, ``input_size`` long."""
        return tuple(slice(lo, lo + n) for n, (lo, _) in zip(self.input_size, self.padding))

    @property
    def terms_per_output(self) -> int:
        """Most products summed into one transposed output element: C_out/groups * prod(k)."""
        return self.out_channels // self.groups * math.prod(self.kernel_size)

    def output_padding_choices(self) -> tuple[range, ...]:
        """Valid output_padding per dim: 0 <= op < max(stride, dilation) (PyTorch's rule)."""
        return tuple(range(max(s, d)) for s, d in zip(self.stride, self.dilation))

    def input_sizes(self) -> tuple["SizeRange", ...]:
        """Per dim, the ``(input size >= 1, output_padding)`` pairs giving this spec's output
        size, as a :class:`SizeRange` (consecutive sizes, described by their ends).

        The forward floor maps ``stride`` consecutive input sizes to one output size; the
        transposed convolution can only tell them apart through output_padding. A range, not a
        list: a stride of 10**9 has 10**9 of them.
        """
        return tuple(SizeRange.of(self.transposed_size(o, k, s, p, d, 0), s)
                     for o, k, s, p, d in zip(self.output_size, self.kernel_size, self.stride,
                                              self.padding, self.dilation))

    def output_padding_for(self, size: Sequence[int]) -> tuple[int, ...]:
        """The output_padding that makes the transposed output exactly ``size`` (spatial)."""
        return ConvSpec.transpose(self.output_shape, self.weight_shape, stride=self.stride,
                                  padding=self.padding, dilation=self.dilation,
                                  groups=self.groups, output_size=size).output_padding

    @property
    def symmetric_padding(self) -> tuple[int, ...] | None:
        """Per-dim padding if low == high in every dim, else None."""
        if all(lo == hi for lo, hi in self.padding):
            return tuple(lo for lo, _ in self.padding)
        return None

    def to_dict(self) -> dict:
        """The fields that rebuild this spec with :meth:`from_dict` (JSON-ready), and its
        output shape."""
        return {"input_shape": list(self.input_shape), "weight_shape": list(self.weight_shape),
                "stride": list(self.stride), "padding": [list(p) for p in self.padding],
                "dilation": list(self.dilation), "groups": self.groups,
                "output_padding": list(self.output_padding),
                "output_shape": list(self.output_shape)}

    @classmethod
    def from_dict(cls, fields: dict) -> "ConvSpec":
        """The spec of :meth:`to_dict`'s fields."""
        return cls.forward(fields["input_shape"], fields["weight_shape"], stride=fields["stride"],
                           padding=[tuple(p) for p in fields["padding"]],
                           dilation=fields["dilation"], groups=fields["groups"],
                           output_padding=fields["output_padding"])

    def describe(self) -> str:
        """One line, e.g. ``input (1, 1, 4, 4), weight (1, 1, 3, 3), stride 2, ...``."""
        return (f"input {self.input_shape}, weight {self.weight_shape}, stride "
                f"{_show(self.stride)}, padding {_show_padding(self.padding)}"
                f", dilation {_show(self.dilation)}, groups {self.groups}, output_padding "
                f"{_show(self.output_padding)} -> output {self.output_shape}")


@dataclass(frozen=True, eq=False)
class SizeRange(abc.Sequence):
    """The input sizes ``first..last`` of one dim that give the same forward output, each with
    the output_padding that restores it (``size - base``); a sequence of ``(size,
    output_padding)`` pairs in increasing order, held by its ends.

    Examples
    --------
    >>> r = SizeRange.of(base=3, stride=2)
    >>> list(r), len(r), (r.first, r.last), r.output_padding(4)
    ([(3, 0), (4, 1)], 2, (3, 4), 1)
    """

    first: int
    last: int
    base: int          # the transposed size with output_padding 0 (may be < 1)

    @classmethod
    def of(cls, base: int, stride: int) -> "SizeRange":
        """Sizes ``base + op`` for ``0 <= op < stride`` that are at least 1."""
        return cls(max(base, 1), base + stride - 1, base)

    def output_padding(self, size: int) -> int:
        """The output_padding that gives input size ``size`` (one of this range)."""
        return size - self.base

    def __len__(self) -> int:
        return max(self.last - self.first + 1, 0)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"SizeRange index {index} out of range")
        return self.first + index, self.first + index - self.base

    def __eq__(self, other) -> bool:
        if isinstance(other, SizeRange):
            return (self.first, self.last, self.base) == (other.first, other.last, other.base)
        if isinstance(other, abc.Sequence) and not isinstance(other, (str, bytes)):
            return len(other) == len(self) and all(
                tuple(a) == b for a, b in zip(other, self))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.first, self.last, self.base))

    def __repr__(self) -> str:
        return f"SizeRange(first={self.first}, last={self.last}, base={self.base})"


# -- shared validation --------------------------------------------------------------------------

def _common(weight_shape, stride, dilation, groups):
    weight_shape = _shape("weight shape", weight_shape)
    if len(weight_shape) < 3:
        raise ConvSpecError(
            f"weight must be (C_out, C_in/groups, *kernel) with at least one spatial dim, "
            f"got shape {weight_shape}")
    ndim = len(weight_shape) - 2
    if any(v < 1 for v in weight_shape):
        raise ConvSpecError(f"weight shape must have sizes >= 1, got {weight_shape}")
    stride = at_least("stride", per_dim("stride", stride, ndim), 1)
    dilation = at_least("dilation", per_dim("dilation", dilation, ndim), 1)
    groups = _as_int("groups", _scalar(groups))
    if groups < 1:
        raise ConvSpecError(f"groups must be >= 1, got {groups}")
    return weight_shape, ndim, stride, dilation, groups


def _check_rank(name: str, shape: tuple[int, ...], ndim: int) -> None:
    if len(shape) != ndim + 2:
        raise ConvSpecError(
            f"{name} must be (N, C, *spatial) with {ndim} spatial dims to match the weight, "
            f"got shape {shape} ({len(shape)} dims, expected {ndim + 2})")


def _check_channels(channels: int, weight_shape: tuple[int, ...], groups: int,
                    name: str) -> None:
    if channels < 1:
        raise ConvSpecError(f"{name} channels must be >= 1, got {channels}")
    if channels % groups:
        raise ConvSpecError(f"groups={groups} must divide the {name} channels {channels}")
    if weight_shape[0] % groups:
        raise ConvSpecError(
            f"groups={groups} must divide the output channels weight.shape[0]={weight_shape[0]}")
    if weight_shape[1] != channels // groups:
        raise ConvSpecError(
            f"weight.shape[1]={weight_shape[1]} must equal {name} channels / groups = "
            f"{channels}/{groups} = {channels // groups}")


def _check_sizes(name: str, size: tuple[int, ...]) -> None:
    if any(n < 1 for n in size):
        raise ConvSpecError(f"{name} spatial size must be >= 1 in every dim, got {_show(size)}")
