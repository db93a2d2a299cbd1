"""The transposed convolution as frames, in its two views, as data (drawn by :mod:`tconv.drawing`).

* **scatter**: one frame per cell of the upstream gradient ``g``; the cell stamps ``g[i] * w``
  onto the padded input (the canvas of :func:`tconv.explain.canvas_spec`), where the copies add
  up; the forward padding is cropped and what remains is ``dL/dx``.
* **sliding**: one frame per cell of ``dL/dx``; the flipped kernel slides over the stretched,
  padded gradient and each position gives one cell.

The animation draws one channel: sample 0, gradient channel 0, kernel ``w[0, 0]``, into input
channel 0, with the spatial parameters of the spec (1-d or 2-d, any stride, padding, dilation
and output_padding). Every number comes from the engine: the accumulated canvas from
:func:`tconv.reference.conv_transpose`, the sliding result from :func:`tconv.forward.correlate`,
and the cells each kernel position touches from the forward convolution's own windows
(:func:`~tconv.forward.correlate` of a canvas of cell numbers with a one-hot kernel).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..methods import scatter
from .._arrays import flip_spatial, insert_zeros, pad_or_crop
from .story import canvas_spec, per_dim_text, scatter_masks, stretched_kinds
from ..methods.direct import correlate
from ..spec import ConvSpec, ConvSpecError

#: Most frames (both views) an animation may have; larger specs are refused (a GIF frame costs
#: about 5-8 KB).
MAX_FRAMES = 100


@dataclass(frozen=True)
class Frame:
    """One frame.

    Attributes
    ----------
    view : str
        ``"title"``, ``"scatter"`` or ``"sliding"``.
    cell : tuple of int
        The ``g`` cell that stamps (scatter) or the ``dL/dx`` cell computed (sliding).
    canvas : ndarray
        The canvas values shown (scatter: the copies so far; sliding: the padded gradient).
    taps : tuple of tuple of int
        Per kernel tap (C order), the canvas cell it touches in this frame.
    result : ndarray
        ``dL/dx`` so far (NaN where not computed yet).
    stamp : ndarray
        Scatter: the copy ``g[cell] * w`` this frame adds (the canvas minus the previous one,
        read at the taps).
    caption : str
        The first line is the heading of a title frame.
    about : str
        Title frames: the view they introduce (``"scatter"``, ``"sliding"``) or ``"both"``.
    """

    view: str
    caption: str
    cell: tuple[int, ...] = ()
    canvas: np.ndarray | None = None
    taps: tuple[tuple[int, ...], ...] = ()
    result: np.ndarray | None = None
    stamp: np.ndarray | None = None
    about: str = ""

    @property
    def window(self) -> np.ndarray:
        """Bool mask of the canvas cells the kernel touches in this frame."""
        mask = np.zeros(self.canvas.shape, dtype=bool)
        for tap in self.taps:
            mask[tap] = True
        return mask


@dataclass(frozen=True)
class Animation:
    """Both views of one single-channel transposed convolution (spatial arrays only)."""

    spec: ConvSpec                  # single-channel spec with the spatial parameters
    g: np.ndarray                   # upstream gradient, spec.output_size
    w: np.ndarray                   # kernel, spec.kernel_size
    flipped: np.ndarray
    scatter_cropped: np.ndarray     # canvas cells outside x (the forward padding)
    scatter_extra: np.ndarray       # canvas cells only output_padding adds
    sliding_canvas: np.ndarray      # the stretched, padded gradient
    sliding_kinds: np.ndarray
    result: np.ndarray              # dL/dx
    frames: tuple[Frame, ...]

    def view(self, name: str) -> list[Frame]:
        return [f for f in self.frames if f.view == name]


def single_channel(spec: ConvSpec) -> ConvSpec:
    """The spec with one sample and one channel, same spatial parameters."""
    return ConvSpec.forward((1, 1) + spec.input_size, (1, 1) + spec.kernel_size,
                            stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                            output_padding=spec.output_padding)


def _windows(canvas_shape, kernel_size, out_size, stride, dilation) -> np.ndarray:
    """``(prod(kernel), *out_size)``: the flat canvas cell each tap reads at each position.

    The forward convolution's own windows: correlate a canvas of cell numbers with a one-hot
    kernel per tap.
    """
    ids = np.arange(math.prod(canvas_shape), dtype=np.int64).reshape((1, 1) + canvas_shape)
    result = []
    for tap in itertools.product(*map(range, kernel_size)):
        onehot = np.zeros((1, 1) + tuple(kernel_size), dtype=np.int64)
        onehot[(0, 0) + tap] = 1
        result.append(correlate(ids, onehot, out_size, stride, dilation, 1)[0, 0])
    return np.stack(result)


def _cells(flat: np.ndarray, shape) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat)


def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v == int(v) else f"{v:.2f}"


def _paren(v) -> str:
    return f"({_fmt(v)})" if v < 0 else _fmt(v)


def _index(cell) -> str:
    return "[" + ", ".join(map(str, cell)) + "]"


def _span(taps, ndim: int) -> str:
    """``rows 0, 1, 2 and columns 2, 3, 4`` (2-d) or ``cells 2, 3, 4`` (1-d) of a kernel copy."""
    names = ("cells",) if ndim == 1 else ("rows", "columns")
    return " and ".join(f"{name} {', '.join(str(v) for v in sorted({t[dim] for t in taps}))}"
                        for dim, name in enumerate(names))


def _scatter_frames(spec: ConvSpec, g, w, cspec: ConvSpec) -> list[Frame]:
    canvas_shape = cspec.input_size
    windows = _windows(canvas_shape, spec.kernel_size, spec.output_size, spec.stride,
                       spec.dilation)
    partial = np.zeros((1, 1) + g.shape, dtype=g.dtype)
    previous = np.zeros(canvas_shape, dtype=np.result_type(g, w))
    frames = []
    for cell in np.ndindex(*g.shape):
        partial[(0, 0) + cell] = g[cell]
        canvas = scatter.conv_transpose(partial, w[None, None], cspec)[0, 0]
        taps = _cells(windows[(slice(None),) + cell], canvas_shape)
        stamp = np.array([canvas[t] - previous[t] for t in taps]).reshape(w.shape)
        frames.append(Frame(
            "scatter", f"g{_index(cell)} = {_fmt(g[cell])} adds {_fmt(g[cell])}\u00b7w onto "
            f"padded {_span(taps, spec.ndim)}: the cells o{_index(cell)} read in the forward "
            f"pass", cell, canvas, taps, stamp=stamp))
        previous = canvas
    return frames


def _sliding_frames(spec: ConvSpec, canvas, flipped, result) -> list[Frame]:
    windows = _windows(canvas.shape, spec.kernel_size, spec.input_size,
                       (1,) * spec.ndim, spec.dilation)
    so_far = np.full(result.shape, np.nan)
    frames = []
    kernel_cells = list(itertools.product(*map(range, spec.kernel_size)))
    for cell in np.ndindex(*result.shape):
        so_far[cell] = result[cell]
        taps = _cells(windows[(slice(None),) + cell], canvas.shape)
        terms = [f"{_paren(flipped[j])}\u00b7{_paren(canvas[t])}"
                 for j, t in zip(kernel_cells, taps) if canvas[t] != 0]
        shown = " + ".join(terms[:4]) + (" + ..." if len(terms) > 4 else "")
        frames.append(Frame(
            "sliding", f"dL/dx{_index(cell)} = {shown + ' = ' if shown else ''}"
            f"{_fmt(result[cell])}"
            f"   ({len(taps) - len(terms)} of {len(taps)} taps meet a zero)",
            cell, canvas, taps, so_far.copy()))
    return frames


def animate(spec: ConvSpec, g: np.ndarray, w: np.ndarray) -> Animation:
    """Both views of the transposed convolution of ``g`` (``spec.output_shape``) with ``w``.

    Only sample 0, channel 0 of ``g`` and ``w[0, 0]`` are drawn. Raises :class:`ConvSpecError`
    for more than 2 spatial dims or more than :data:`MAX_FRAMES` frames.

    Examples
    --------
    >>> import numpy as np
    >>> spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
    >>> a = animate(spec, np.ones(spec.output_shape), np.ones(spec.weight_shape))
    >>> len(a.view("scatter")), len(a.view("sliding")), a.result[0].tolist()
    (4, 16, [1.0, 2.0, 1.0, 1.0])
    """
    if spec.ndim > 2:
        raise ConvSpecError(f"animations draw 1-d and 2-d convolutions; this spec has "
                            f"{spec.ndim} spatial dims")
    one = single_channel(spec)
    count = math.prod(one.output_size) + math.prod(one.input_size)
    if count > MAX_FRAMES:
        raise ConvSpecError(f"the animation would have {count} frames (g cells + x cells), "
                            f"more than {MAX_FRAMES}; use a smaller --input")
    g0, w0 = np.asarray(g)[0, 0], np.asarray(w)[0, 0]
    cspec = canvas_spec(one)
    cropped, extra = scatter_masks(one)
    canvas = pad_or_crop(insert_zeros(g0[None, None], one.stride), one.transpose_padding)
    flipped = flip_spatial(w0[None, None])
    result = correlate(canvas, flipped, one.input_size, (1,) * one.ndim, one.dilation, 1)[0, 0]
    channel = "" if g.shape[:2] == (1, 1) and w.shape[:2] == (1, 1) else \
        " (sample 0, channel 0 only)"
    crops = per_dim_text([f"{lo} low, {hi} high" for lo, hi in one.padding], "; ")
    pads = per_dim_text([f"{s - 1} zero(s) between cells, padding {lo} low, {hi} high"
                         for s, (lo, hi) in zip(one.stride, one.transpose_padding)], "; ")
    titles = (
        Frame("title", "1. Scatter: the backward pass by definition" + channel + ".\nEach cell "
              "of the upstream gradient g adds a copy of the kernel, scaled by its value, onto "
              "the cells of the padded input its forward window read. Copies overlap and add "
              "up. The forward padding (hatched) is not part of x: it is cropped. "
              f"Here the crop is, {crops}.", about="scatter"),
        Frame("title", "2. Zero insertion: the same numbers as an ordinary convolution.\n"
              "Insert stride-1 zeros into g, pad it by dilation*(k-1) - padding "
              "(+ output_padding on the high side; negative: crop) and slide the flipped "
              "kernel over it: each position gives one cell of dL/dx. Here, "
              f"{pads}.", about="sliding"),
        Frame("title", "Both views give the same dL/dx.\nThe scatter is the backward pass of "
              "the convolution by definition (each output sends its gradient back to the cells "
              "it read); the zero-insertion view computes the same numbers as an ordinary "
              "convolution: that is the transposed convolution.", about="both"),
    )
    scatter = _scatter_frames(one, g0, w0, cspec)
    sliding = _sliding_frames(one, canvas[0, 0], flipped[0, 0], result)
    return Animation(one, g0, w0, flipped[0, 0], cropped, extra, canvas[0, 0],
                     stretched_kinds(one), result,
                     (titles[0], *scatter, titles[1], *sliding, titles[2]))
