"""The window model: every framework keeps a window of one full transposed convolution.

Per spatial dim, with the layer's input size ``o``, stride ``s`` and dilated kernel extent
``K = dilation * (kernel - 1) + 1``, the full result has ``F = (o - 1) * s + K`` cells (each input
cell adds a scaled copy of the kernel); a layer returns the cells ``[start, stop)`` of it, where
cells past ``F`` are zeros. A framework's arguments only choose the window, so two layers are the
same when they keep the same windows, and a target that cannot keep the source's window needs a
*crop*: per dim ``(low, high)``, the cells to remove at the start and at the end of the target's
output (negative: zero cells to add, exact only past the full result).

In tconv's terms the window is a :class:`~tconv.spec.ConvSpec` of the transposed layer:
``start`` is the low padding and ``stop = F + output_padding - high``. Only
``high - output_padding`` reaches the numbers, so the *canonical* spec of a window is the one with
the smaller output_padding (``output_padding > 0`` only when the high padding is 0).
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from ..spec import ConvSpec, ConvSpecError

Pair = tuple[int, int]


@dataclass(frozen=True)
class Dim:
    """One spatial dim of a transposed-conv layer: what every window rule needs.

    ``size`` is the layer's input size (the forward convolution's output size).
    """

    size: int
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


def spec_dims(spec: ConvSpec) -> list[Dim]:
    """The spatial dims of ``spec``'s transposed layer (its input is ``spec.output_size``)."""
    return layer_dims(spec.output_size, spec.kernel_size, spec.stride, spec.dilation)


def layer_dims(size: Sequence[int], kernel, stride, dilation) -> list[Dim]:
    return [Dim(o, k, s, d) for o, k, s, d in zip(size, kernel, stride, dilation)]


def windows(spec: ConvSpec) -> tuple[Pair, ...]:
    """Per spatial dim, the cells ``[start, stop)`` of the full transposed result it keeps."""
    return tuple((w.start, w.stop) for w in spec.input_window)


def spec_keeping(y_shape, w_shape, stride, dilation, groups, wins, where: str) -> ConvSpec:
    """The canonical spec of the transposed layer with input ``y_shape`` and weight ``w_shape``
    (``(C_in, C_out/groups, *k)``) that keeps ``wins``; ``where`` names the layer in errors."""
    pads, ops = [], []
    for i, ((start, stop), dim) in enumerate(zip(wins, layer_dims(y_shape[2:], w_shape[2:],
                                                                  stride, dilation))):
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


def split_wide(wins, dims, where: str) -> tuple[list[Pair], tuple[Pair, ...]]:
    """``(inner, outer)``: windows reaching before the full result (start < 0) or ``max(stride,
    dilation)`` or more cells past it are one transposed layer keeping ``inner`` followed by
    ``outer[i] = (low, high)`` zero cells; ``outer`` is empty when every window is one layer's.

    lax and Flax padding wider than the kernel's reach, and an ONNX ``output_shape`` larger than
    the full result, keep such windows (their frameworks add the zeros, and the bias on them).
    """
    inner, outer = [], []
    for i, ((start, stop), dim) in enumerate(zip(wins, dims)):
        top = dim.full + dim.limit - 1
        if stop <= max(start, 0) or start >= top:
            raise ConvSpecError(
                f"{where} keeps no cell of the transposed convolution in spatial dim {i} (cells "
                f"[{start}, {stop}) of the {dim.full}-cell full result)")
        inner.append((max(start, 0), min(stop, top)))
        outer.append((max(-start, 0), max(stop - top, 0)))
    return inner, (tuple(outer) if any(lo or hi for lo, hi in outer) else ())


def widened(wins, outer) -> tuple[Pair, ...]:
    """``wins`` with ``outer`` zero cells added at the ends (:func:`split_wide` undone)."""
    if not outer:
        return tuple(wins)
    return tuple((start - lo, stop + hi) for (start, stop), (lo, hi) in zip(wins, outer))


def canonical(spec: ConvSpec) -> ConvSpec:
    """The spec with the same windows (the same numbers) and the smallest output_padding.

    >>> spec = ConvSpec.transpose((1, 1, 4), (1, 1, 3), stride=2, padding=1, output_padding=1)
    >>> canonical(spec).padding, canonical(spec).output_padding
    (((1, 0),), (0,))
    """
    return spec_keeping(spec.output_shape, spec.weight_shape, spec.stride, spec.dilation,
                        spec.groups, windows(spec), "the spec")


# -- choosing the closest window of a target ------------------------------------------------------

def crop(want: Pair, have: Pair) -> Pair:
    """Cells to cut at the start and the end of ``have`` to get ``want`` (negative: add zeros)."""
    return want[0] - have[0], have[1] - want[1]


def _cost(cut: Pair) -> tuple[int, int]:
    """Cells moved, then cells added: a crop of 1 beats a pad of 1 beats a crop of 2."""
    return abs(cut[0]) + abs(cut[1]), max(-cut[0], 0) + max(-cut[1], 0)


def _fixable(want: Pair, have: Pair, full: int) -> bool:
    """Whether a crop turns ``have`` into ``want``: the cells ``have`` lacks must be zeros of the
    source, i.e. past the full result (a pad can only add zeros)."""
    return have[0] <= want[0] and (have[1] >= want[1] or have[1] >= full)


def closest(want: Pair, full: int, candidates: Iterable[tuple[object, Pair]]):
    """The fixable ``(params, window)`` needing the smallest crop (the first of equals), or
    None."""
    fixable = [c for c in candidates if _fixable(want, c[1], full)]
    return min(fixable, key=lambda c: _cost(crop(want, c[1]))) if fixable else None


def near(values: range, *targets: int, reach: int = 2) -> list[int]:
    """The members of ``values`` (step 1) within ``reach`` of any target clamped into it, and
    its two ends, ascending: the only ones that can win when the cost of a window is piecewise
    linear in the parameter with its corners at the targets."""
    if len(values) <= 2 * reach + 2:
        return list(values)
    first, last = values[0], values[-1]
    picked = {first, last}
    for target in targets:
        at = min(max(target, first), last)
        picked.update(range(max(at - reach, first), min(at + reach, last) + 1))
    return sorted(picked)


def worth_trying(values: range, window: Callable[[int], Pair], want: Pair, full: int) -> list[int]:
    """The few members of ``values`` among which :func:`closest` finds the best ``window(n)``,
    for a family whose start never grows and whose stop never shrinks as ``n`` grows (the
    output sizes or output_paddings of every target): the ends, and beside the first ``n``
    whose start reaches ``want[0]``, whose stop reaches ``want[1]`` and whose stop reaches
    ``full`` (found by bisection). So the search never walks a range as long as the stride.

    Why these suffice: a candidate whose stop falls short of ``want[1]`` is fixable only once its
    stop reaches ``full``, so over the fixable candidates the cost falls until the stop reaches
    ``want[1]`` and grows after it; the best is beside one of the points. ``reach`` is a margin.
    """
    cut = [bisect_left(values, True, key=lambda n: window(n)[0] <= want[0]),
           bisect_left(values, True, key=lambda n: window(n)[1] >= want[1]),
           bisect_left(values, True, key=lambda n: window(n)[1] >= full)]
    return near(values, *(values.start + i for i in cut))


def choose(wants, fulls, modes: dict):
    """``modes`` maps a global mode (one padding string for all dims) to per-dim candidate lists;
    return ``(mode, [params per dim])`` needing the smallest total crop (earlier modes win
    ties)."""
    best = None
    for rank, (mode, candidates) in enumerate(modes.items()):
        picks = [closest(want, full, cands)
                 for want, full, cands in zip(wants, fulls, candidates)]
        if None in picks:
            continue
        costs = [_cost(crop(want, win)) for want, (_, win) in zip(wants, picks)]
        key = (sum(c[0] for c in costs), sum(c[1] for c in costs), rank)
        if best is None or key < best[0]:
            best = (key, mode, [params for params, _ in picks])
    if best is None:
        raise ConvSpecError("no layer of the target keeps the source's cells, even with a crop")
    return best[1], best[2]


def within(want: Pair, top: int) -> Pair:
    """The window closest to ``want`` inside ``[0, top)``: what explicit pads with
    ``output_padding < stride`` reach (``top = F + stride - 1``); the rest are zeros to add."""
    stop = min(want[1], top)
    return min(want[0], stop - 1), stop
