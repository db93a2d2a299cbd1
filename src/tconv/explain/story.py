"""The step-by-step story of one spec, as data: why the transposed convolution is the backward pass.

:func:`explain` walks from the forward convolution to its input gradient in the order of the
original experiment (``docs/origin.md``): the forward output size, the input rows the stride
drops and the output_padding that restores them, the scatter definition, zero insertion, the
padding ``dilation*(k-1) - padding`` (+ output_padding on the high side), the flipped kernel with
its channels swapped, the ordinary convolution, the sub-pixel phases and the matrix ``C``.

Nothing here computes a size or a convolution of its own. Sizes come from
:class:`~tconv.spec.ConvSpec`; arrays from the engine's functions: :func:`tconv.forward.conv`
and :func:`~tconv.forward.correlate`, the helpers of :mod:`tconv._arrays`,
:func:`tconv.methods.scatter.conv_transpose` (the scatter), :func:`tconv.methods.polyphase.phases`
and :func:`tconv.methods.matrix.forward_matrix`. The renderers (the terminal in
:mod:`tconv.commands.explain`, figures in :mod:`tconv.drawing`) only draw these objects.

:func:`shape_facts` and :func:`overlap` are the data of ``tconv shape`` and ``tconv overlap``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ..methods import direct
from ..methods import scatter
from .._arrays import flip_spatial, insert_zeros, pad_or_crop, swap_group_channels
from ..methods import METHODS, matrix, polyphase
from ..ops import convolve, transpose
from ..spec import ConvSpec, ConvSpecError
from ..verify import DotTest, dot_test

__all__ = ["KINDS", "Panel", "Step", "Explanation", "explain", "sample_data", "canvas_spec",
           "scatter_masks", "stretched_kinds", "shape_facts", "Overlap", "overlap",
           "MatrixView", "matrix_view", "overlap_summary", "kind_label", "per_dim_text"]

#: What a cell is, for the colours and the legend of every renderer.
KINDS = {
    "data": "a value",
    "inserted": "inserted zero (stride - 1 between neighbours)",
    "padding": "padding zero",
    "output_padding": "output_padding: added on the high side",
    "unread": "read by no window of the forward conv",
    "empty": "no kernel tap: a zero C does not store",
}

#: Largest matrix C (in cells) an explanation shows densely.
DENSE_MATRIX_CELLS = 4096


def kind_label(kind: str) -> str:
    """Legend text of a cell kind (``phase3`` included)."""
    if kind.startswith("phase"):
        return f"phase {kind[5:]}: cells one sub-kernel computes"
    return KINDS[kind]


# -- the data -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Panel:
    """One array of a step, with what each cell is.

    Attributes
    ----------
    name : str
        What the array is, e.g. ``"o = conv(x, w)"``.
    values : ndarray
        ``(N, C, *spatial)`` when ``lead == 2``; a plain (spatial or matrix) array when
        ``lead == 0``.
    kinds : ndarray of str, optional
        Same shape as ``values``: a key of :data:`KINDS` (or ``"phaseN"``) per cell.
    cropped : ndarray of bool, optional
        Cells outside ``x``: the forward padding, which the transposed convolution crops.
    lead : int
        Leading non-spatial axes of ``values`` (drawn as separate slices).
    """

    name: str
    values: np.ndarray
    kinds: np.ndarray | None = None
    cropped: np.ndarray | None = None
    lead: int = 2

    def to_dict(self) -> dict:
        out = {"name": self.name, "shape": list(self.values.shape),
               "values": self.values.tolist()}
        if self.kinds is not None:
            out["kinds"] = self.kinds.tolist()
        if self.cropped is not None:
            out["cropped"] = self.cropped.tolist()
        return out


@dataclass(frozen=True)
class Step:
    """One step of the story: a title, the reasoning with the numbers filled in, the arrays."""

    key: str
    title: str
    text: str
    panels: tuple[Panel, ...] = ()
    facts: dict = field(default_factory=dict)

    def panel(self, name_start: str) -> Panel:
        """The first panel whose name starts with ``name_start``."""
        for p in self.panels:
            if p.name.startswith(name_start):
                return p
        raise KeyError(name_start)

    def to_dict(self) -> dict:
        return {"key": self.key, "title": self.title, "text": self.text, "facts": self.facts,
                "panels": [p.to_dict() for p in self.panels]}


@dataclass(frozen=True)
class Explanation:
    """Every step for one spec and one set of data: ``x``, ``w`` and the upstream gradient ``g``."""

    spec: ConvSpec
    x: np.ndarray
    w: np.ndarray
    g: np.ndarray
    result: np.ndarray          # dL/dx, the transposed convolution of g
    steps: tuple[Step, ...]

    def step(self, key: str) -> Step:
        for s in self.steps:
            if s.key == key:
                return s
        raise KeyError(key)

    def to_dict(self) -> dict:
        return {"spec": self.spec.describe(), "steps": [s.to_dict() for s in self.steps]}


# -- helpers shared with the animation and the figures -----------------------------------------

def sample_data(spec: ConvSpec, *, ints: bool = False, seed: int = 0):
    """``(x, w)`` for an explanation: standard normal float64, or small integers (exact).

    Integer kernels avoid 0 so that every stamp of the scatter is visible.
    """
    rng = np.random.default_rng(seed)
    if ints:
        x = rng.integers(-3, 4, size=spec.input_shape).astype(np.int64)
        w = rng.choice(np.array([-2, -1, 1, 2], dtype=np.int64), size=spec.weight_shape)
        return x, w
    return rng.standard_normal(spec.input_shape), rng.standard_normal(spec.weight_shape)


def canvas_spec(spec: ConvSpec) -> ConvSpec:
    """The single-channel spec of the *uncropped* transposed result (padding 0).

    Its transposed output is the padded forward input, ``in + pad_low + pad_high`` cells per
    dim, where the scatter stamps its kernel copies before the forward padding is cropped.
    """
    return ConvSpec.transpose((1, 1) + spec.output_size, (1, 1) + spec.kernel_size,
                              stride=spec.stride, padding=0, dilation=spec.dilation,
                              output_padding=spec.output_padding)


def scatter_masks(spec: ConvSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(cropped, extra)`` over the canvas of :func:`canvas_spec` (spatial bool arrays).

    ``cropped``: cells outside ``x`` (the forward padding). ``extra``: cells past the full
    result ``(out - 1)*stride + K`` that only output_padding adds; no kernel copy reaches them.
    """
    shape = canvas_spec(spec).input_size
    inside = np.zeros(shape, dtype=bool)
    inside[spec.input_window] = True
    reached = np.zeros(shape, dtype=bool)
    reached[tuple(slice(0, n) for n in spec.full_output_size)] = True
    return ~inside, ~reached


def stretched_kinds(spec: ConvSpec) -> np.ndarray:
    """What each cell of the padded, zero-inserted gradient is (spatial array of kind names).

    Built with the engine's own :func:`insert_zeros` and :func:`pad_or_crop` on indicator
    arrays: ``data`` where a value of ``g`` sits, ``inserted`` between them, ``padding`` for the
    ``K - 1 - pad`` zeros, ``output_padding`` for the last output_padding cells of the high side.
    """
    ones = np.ones((1, 1) + spec.output_size, dtype=np.int64)
    stretched = insert_zeros(ones, spec.stride)
    values = pad_or_crop(stretched, spec.transpose_padding)[0, 0]
    inside = pad_or_crop(np.ones_like(stretched), spec.transpose_padding)[0, 0]
    kinds = np.full(values.shape, "padding", dtype=object)
    for dim, op in enumerate(spec.output_padding):
        n = values.shape[dim]
        kinds[(slice(None),) * dim + (slice(n - op, n),)] = "output_padding"
    kinds[inside == 1] = "inserted"
    kinds[values == 1] = "data"
    return kinds.astype(str)


def _broadcast(spatial: np.ndarray, shape) -> np.ndarray:
    return np.broadcast_to(spatial, shape).copy()


def per_dim_text(lines: list[str], sep: str = "\n") -> str:
    """``every dim: ...`` when all dims read the same, else one ``dim i: ...`` part each."""
    if len(set(lines)) == 1:
        return ("every dim: " if len(lines) > 1 else "") + lines[0]
    return sep.join(f"dim {i}: {line}" for i, line in enumerate(lines))


def _py(values) -> str:
    """Python spelling of a per-dim parameter: ``2`` when every dim agrees, else the tuple."""
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else str(values)


def _show(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(values) == 1 else "x".join(map(str, values))


# -- the steps ----------------------------------------------------------------------------------

def _forward_step(spec: ConvSpec, x, w, o) -> Step:
    lines = [f"out = floor((in + pad_low + pad_high - K) / stride) + 1 = "
             f"floor(({n} + {lo} + {hi} - {e}) / {s}) + 1 = {m}, "
             f"with K = dilation*(k-1) + 1 = {d}*({k}-1) + 1 = {e}"
             for n, (lo, hi), e, s, m, d, k in zip(
                 spec.input_size, spec.padding, spec.extents, spec.stride, spec.output_size,
                 spec.dilation, spec.kernel_size)]
    text = (f"The forward convolution slides the {_show(spec.kernel_size)} kernel over the padded "
            f"input with stride {_show(spec.stride)}.\n{per_dim_text(lines)}\n"
            f"Its output o is {spec.output_shape}. With the loss L = sum(o*o)/2 the upstream "
            f"gradient dL/do is o itself: that is the g every later step starts from.")
    return Step("forward", "The forward convolution and its output size", text,
                (Panel("x (input)", x), Panel("w (kernel)", w), Panel("o = conv(x, w)", o)),
                {"output_size": spec.output_size, "extent": spec.extents})


def _dropped_step(spec: ConvSpec, x) -> Step:
    cspec = canvas_spec(spec)
    cropped, _ = scatter_masks(spec)
    ones_y = np.ones((1, 1) + spec.output_size, dtype=np.int64)
    ones_w = np.ones((1, 1) + spec.kernel_size, dtype=np.int64)
    reads = scatter.conv_transpose(ones_y, ones_w, cspec)[0, 0]   # windows covering each cell
    padded = pad_or_crop(x, spec.padding)
    kinds = np.where(reads == 0, "unread", np.where(cropped, "padding", "data"))
    lines = []
    for n, (lo, hi), full, op, s, m, sizes in zip(
            spec.input_size, spec.padding, spec.full_output_size, spec.output_padding,
            spec.stride, spec.output_size, spec.input_sizes()):
        if len(sizes) <= 4:
            same = ", ".join(f"{size} (output_padding {p})" for size, p in sizes)
        else:
            same = (f"{sizes.first}..{sizes.last} (output_padding "
                    f"{sizes.output_padding(sizes.first)}..{sizes.output_padding(sizes.last)})")
        lines.append(
            f"the padded input has {lo} + {n} + {hi} cells; the {m} windows (every {s}) cover "
            f"padded cells 0..{full - 1}, so the last {op} cell(s) are read by no window. "
            f"Input sizes {same} all give out = {m}.")
    text = (f"The floor in the output size drops the trailing cells no window reaches.\n"
            f"{per_dim_text(lines)}\nSo the forward output does not tell how long x was. The "
            f"transposed convolution computes in = (out-1)*stride - pad_low - pad_high + K + "
            f"output_padding, and output_padding = {_show(spec.output_padding)} picks "
            f"{_show(spec.input_size)}. Valid values: 0 <= output_padding < max(stride, dilation).")
    return Step("dropped", "The cells the stride drops, and output_padding", text,
                (Panel("x padded by the forward padding", padded, _broadcast(kinds, padded.shape)),
                 Panel("windows reading each padded cell", reads, kinds, lead=0)),
                {"input_sizes": [[d.first, d.last] for d in spec.input_sizes()],
                 "output_padding": spec.output_padding,
                 "output_padding_choices": [[r.start, r.stop - 1]
                                            for r in spec.output_padding_choices()],
                 "unread_cells": int((reads == 0).sum())})


def _scatter_step(spec: ConvSpec, g, w, result) -> Step:
    full_spec = ConvSpec.transpose(g.shape, w.shape, stride=spec.stride, padding=0,
                                   dilation=spec.dilation, groups=spec.groups,
                                   output_padding=spec.output_padding)
    full = scatter.conv_transpose(g, w, full_spec)
    cropped, extra = scatter_masks(spec)
    kinds = np.where(extra, "output_padding", "data")
    lines = [f"g[i] lands on padded cells i*{s} + j*{d} for j = 0..{k - 1}; crop {lo} low and "
             f"{hi} high" for s, d, k, (lo, hi) in
             zip(spec.stride, spec.dilation, spec.kernel_size, spec.padding)]
    text = ("The input gradient by definition (the backward pass of o[i] = sum_j w[j] * "
            "x_padded[i*stride + j*dilation]): every cell g[i] adds the copy g[i]*w onto the "
            "padded cells its forward window read. Overlapping copies add up.\n"
            f"{per_dim_text(lines)}: the forward padding is not part of x, so its share is "
            f"dropped (hatched). {'' if not extra.any() else 'Output_padding cells get no copy. '}"
            "What remains is dL/dx.")
    return Step("scatter", "The backward pass by definition: each g cell stamps g*w", text,
                (Panel("g = dL/do (upstream gradient)", g),
                 Panel("sum of the copies on the padded input", full,
                       _broadcast(kinds, full.shape), _broadcast(cropped, full.shape)),
                 Panel("dL/dx (the copies inside x)", result)),
                {"full_size": spec.full_output_size})


def _zero_insertion_step(spec: ConvSpec, g) -> tuple[Step, np.ndarray]:
    stretched = insert_zeros(g, spec.stride)
    ones = insert_zeros(np.ones_like(g), spec.stride)
    kinds = np.where(ones == 1, "data", "inserted")
    lines = [f"{s - 1} zero(s) between neighbours: {m} cells -> {n}"
             for s, m, n in zip(spec.stride, spec.output_size, stretched.shape[2:])]
    text = ("The other reading of the same sum: which g cells reach x[q]? Those with "
            "i*stride = q + pad_low - j*dilation, i.e. every stride-th cell. Put stride - 1 zeros "
            "between neighbouring cells of g and the stride disappears: x[q] becomes an ordinary "
            f"stride-1 sum over consecutive cells.\n{per_dim_text(lines)}")
    return Step("zero_insertion", "Zero insertion: undo the stride", text,
                (Panel("g with zeros inserted", stretched, kinds),),
                {"stretched_size": stretched.shape[2:]}), stretched


def _padding_step(spec: ConvSpec, stretched) -> tuple[Step, np.ndarray, np.ndarray]:
    padded = pad_or_crop(stretched, spec.transpose_padding)
    kinds = _broadcast(stretched_kinds(spec), padded.shape)
    lines = []
    for e, (lo, hi), op, (tlo, thi) in zip(spec.extents, spec.padding, spec.output_padding,
                                            spec.transpose_padding):
        lines.append(f"low K-1-pad_low = {e}-1-{lo} = {tlo}, high K-1-pad_high+output_padding "
                     f"= {e}-1-{hi}+{op} = {thi}")
    negative = any(v < 0 for pair in spec.transpose_padding for v in pair)
    text = ("Pad the stretched gradient. A full convolution pads K-1 = dilation*(k-1) zeros on "
            "each side so that every partial overlap counts; the forward padding already "
            "supplied pad cells that x does not have, so the padding shrinks by them. The "
            "output_padding cells go on the high side: they restore the cells the stride "
            f"dropped.\n{per_dim_text(lines)}"
            + ("\nA negative amount crops: the forward padding was wider than the kernel."
               if negative else ""))
    return (Step("padding", "Padding: dilation*(k-1) - padding, output_padding on the high side",
                 text, (Panel("g stretched and padded", padded, kinds),),
                 {"transpose_padding": spec.transpose_padding}), padded, kinds)


def _kernel_step(spec: ConvSpec, w) -> tuple[Step, np.ndarray]:
    flipped = flip_spatial(w)
    swapped = swap_group_channels(flipped, spec.groups)
    text = ("Reading the sum from x's side runs over the kernel backwards: x[q] meets w[k-1] "
            "first. So the kernel is flipped in every spatial dim (180 degrees in 2-d). The "
            f"forward weight {w.shape} maps C_in={spec.in_channels} to "
            f"C_out={spec.out_channels} channels; going back, its two channel axes swap within "
            f"each of the {spec.groups} group(s): {swapped.shape}"
            + (" (one channel: nothing to swap)." if w.shape[:2] == (1, 1) else "."))
    return Step("kernel", "Flip the kernel, swap its channels", text,
                (Panel("w", w), Panel("w flipped", flipped),
                 Panel("flipped, channels swapped", swapped)),
                {"kernel_shape": swapped.shape}), swapped


def _convolution_step(spec: ConvSpec, padded, kinds, kernel, g, w, result) -> Step:
    conv = direct.correlate(padded, kernel, spec.input_size, (1,) * spec.ndim, spec.dilation,
                             spec.groups)
    diffs = {m: float(np.max(np.abs(transpose(g, w, spec, m) - conv), initial=0.0))
             for m in METHODS}
    text = ("An ordinary stride-1 convolution (cross-correlation, dilation "
            f"{_show(spec.dilation)}) of the stretched, padded gradient with the flipped kernel "
            f"gives {conv.shape}: dL/dx, the same numbers as the scatter. This is "
            f"conv_transpose(g, w, stride={_py(spec.stride)}, padding="
            f"{_py(spec.symmetric_padding or spec.padding)}, output_padding="
            f"{_py(spec.output_padding)}, dilation={_py(spec.dilation)}, groups={spec.groups})."
            " Largest difference to it of every "
            "tconv method: " + ", ".join(f"{m} {v:.2g}" for m, v in diffs.items()) + ".")
    return Step("convolution", "The ordinary convolution", text,
                (Panel("g stretched and padded", padded, kinds),
                 Panel("flipped, channels swapped", kernel), Panel("dL/dx", conv)),
                {"max_abs_diff": diffs, "equals_scatter": bool(np.array_equal(conv, result))
                 if conv.dtype.kind in "iu" else bool(np.allclose(conv, result))})


def _phases_step(spec: ConvSpec, w, result) -> Step:
    per_dim = [polyphase.phases(spec, dim, tapless=True) for dim in range(spec.ndim)]
    labels = np.full(spec.input_size, "", dtype=object)
    panels, lines = [], []
    multiplies = 0
    combos = sorted(itertools.product(*per_dim), key=lambda c: tuple(ph.start for ph in c))
    for number, combo in enumerate(combos):
        cells = tuple(ph.cells(s) for ph, s in zip(combo, spec.stride))
        if all(ph.count for ph in combo):
            labels[cells] = f"phase{number}"
        taps = [ph.taps for ph in combo]
        where = "(" + ", ".join(str(ph.start) for ph in combo) + ")"
        count = math.prod(ph.count for ph in combo)
        if all(taps) and count:
            sub = w[np.ix_(range(w.shape[0]), range(w.shape[1]), *taps)]
            panels.append(Panel(f"phase {number} sub-kernel", sub,
                                np.full(sub.shape, f"phase{number}")))
            multiplies += count * sub[0, 0].size
            lines.append(f"phase {number}: {count} cell(s) of x from {where}, every "
                         f"{_show(spec.stride)}: taps {' x '.join(map(str, taps))}, "
                         f"sub-kernel {_show(sub.shape[2:])}")
        elif count:
            lines.append(f"phase {number}: {count} cell(s) of x from {where}: no tap reaches "
                         f"them, they are 0")
    dense = math.prod(spec.input_size) * math.prod(spec.kernel_size)
    text = ("Most products of the ordinary convolution meet an inserted zero. Split x by the "
            "position of each cell modulo the stride (its phase): the cells of one phase meet "
            "the same kernel taps, so each phase is a small stride-1 convolution of g with a "
            "sub-kernel, and the phases interleave into x.\n" + "\n".join(lines)
            + f"\nPer channel pair: {multiplies} multiplies instead of {dense}.")
    kinds = _broadcast(labels.astype(str), result.shape)
    return Step("phases", "Sub-pixel phases: no multiply by an inserted zero", text,
                (Panel("dL/dx by phase", result, kinds),) + tuple(panels),
                {"phases": len(panels), "multiplies": multiplies, "dense_multiplies": dense})


@dataclass(frozen=True)
class MatrixView:
    """The forward convolution as a dense matrix, for pictures and the terminal.

    Attributes
    ----------
    c : ndarray
        ``(C_out * prod(out), C_in * prod(in))``: ``o = C x`` for one sample.
    taps : ndarray of int
        Same shape: the kernel tap (1-based, C order over the kernel) behind each stored
        entry, 0 where C stores nothing (the taps that fall into the padding).
    dot : DotTest
        The dot-product test of the spec.
    """

    spec: ConvSpec
    c: np.ndarray
    taps: np.ndarray
    dot: DotTest

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.taps))

    def to_dict(self) -> dict:
        return {"spec": self.spec.describe(), "shape": self.c.shape, "nnz": self.nnz,
                "density": self.nnz / self.c.size, "C": self.c.tolist(),
                "taps": self.taps.tolist(),
                "dot_test": {"lhs": self.dot.lhs, "rhs": self.dot.rhs,
                             "passed": self.dot.passed}}


#: Largest C (in cells) :func:`matrix_view` builds densely.
MAX_MATRIX_CELLS = 250_000


def matrix_view(spec: ConvSpec, w: np.ndarray) -> MatrixView:
    """C of ``spec`` for weight ``w`` (built by :func:`tconv.methods.matrix.forward_matrix`).

    Examples
    --------
    >>> spec = ConvSpec.forward((1, 1, 4), (1, 1, 3), stride=2, padding=1)
    >>> view = matrix_view(spec, np.array([[[1, 2, 3]]]))
    >>> view.c.tolist(), view.taps.tolist()
    ([[2, 3, 0, 0], [0, 1, 2, 3]], [[2, 3, 0, 0], [0, 1, 2, 3]])
    """
    rows, cols = _matrix_shape(spec)
    if rows * cols > MAX_MATRIX_CELLS:
        raise ConvSpecError(
            f"C would have {rows} x {cols} = {rows * cols} cells, more than {MAX_MATRIX_CELLS} "
            f"to show densely; use a smaller --input")
    c = matrix.forward_matrix(w, spec).toarray()
    ids = np.broadcast_to(np.arange(1, math.prod(spec.kernel_size) + 1).reshape(
        spec.kernel_size), spec.weight_shape)
    taps = matrix.forward_matrix(np.ascontiguousarray(ids), spec).toarray()
    return MatrixView(spec, c, taps, dot_test(spec))


def _matrix_shape(spec: ConvSpec) -> tuple[int, int]:
    """C maps one flattened sample of x to one flattened sample of o."""
    return math.prod(spec.output_shape[1:]), math.prod(spec.input_shape[1:])


def _matrix_step(spec: ConvSpec, x, w, g, o, result) -> Step:
    rows, cols = _matrix_shape(spec)
    view = matrix_view(spec, w) if rows * cols <= MAX_MATRIX_CELLS else None
    test = view.dot if view is not None else dot_test(spec)
    adjoint = (f"The dot-product test <conv(x, w), y> = <x, conv_transpose(y, w)> on random "
               f"integers: {test.lhs:g} = {test.rhs:g}, {'passed' if test.passed else 'FAILED'}.")
    facts = {"shape": (rows, cols),
             "dot_test": {"lhs": test.lhs, "rhs": test.rhs, "passed": test.passed}}
    title = "The matrix C: the backward pass is C^T"
    if view is None:
        return Step("matrix", title, (
            f"The forward convolution is o = C x for a ({rows}, {cols}) matrix C, too large "
            f"to show here. dL/dx = C^T g. {adjoint}"), (), facts)
    c = view.c
    fwd = (c @ x.reshape(spec.batch, -1).T).T.reshape(o.shape)
    back = (c.T @ g.reshape(spec.batch, -1).T).T.reshape(result.shape)
    facts.update(nnz=view.nnz, density=view.nnz / c.size,
                 forward_max_abs_diff=float(np.max(np.abs(fwd - o))),
                 backward_max_abs_diff=float(np.max(np.abs(back - result))))
    text = (f"The forward convolution is linear: flatten x to {cols} numbers and o to "
            f"{rows}, and o = C x for a sparse ({rows}, {cols}) matrix C with one entry per "
            f"(output cell, kernel tap inside x): {view.nnz} of {c.size} cells "
            f"({facts['density']:.0%}). The gradient of a linear map is its transpose: "
            "dL/dx = C^T dL/do = C^T g. Column by column C^T g is the scatter; row by row it is "
            "the ordinary convolution of the stretched gradient. That is why the transposed "
            f"convolution is the backward pass (here |C x - o| <= "
            f"{facts['forward_max_abs_diff']:.2g}, |C^T g - dL/dx| <= "
            f"{facts['backward_max_abs_diff']:.2g}). {adjoint}")
    panels = ()
    if c.size <= DENSE_MATRIX_CELLS:
        panels = (Panel("C (o = C x)", c, np.where(view.taps > 0, "data", "empty"), lead=0),)
    return Step("matrix", title, text, panels, facts)


#: Largest array (in cells) an explanation computes and shows.
MAX_EXPLAIN_CELLS = 1 << 20


def _check_drawable(spec: ConvSpec) -> None:
    """A ConvSpecError naming the sizes when an array of the story would exceed
    :data:`MAX_EXPLAIN_CELLS`: the input, the padded input, the uncropped result, the stretched
    and padded gradient (a stride of 10**9 with padding stretches 2 cells over 10**9)."""
    lead_x, lead_y = spec.batch * spec.in_channels, spec.batch * spec.out_channels
    arrays = {
        "x": (lead_x, spec.input_size),
        "the padded input": (lead_x, spec.padded_input_size),
        "the uncropped result": (lead_x, spec.canvas_size),
        "the stretched, padded gradient": (lead_y, tuple(
            (o - 1) * s + 1 + max(lo, 0) + max(hi, 0) for o, s, (lo, hi) in
            zip(spec.output_size, spec.stride, spec.transpose_padding))),
        "the kernel": (spec.out_channels * spec.weight_shape[1], spec.kernel_size)}
    name, (lead, size) = max(arrays.items(), key=lambda kv: kv[1][0] * math.prod(kv[1][1]))
    if lead * math.prod(size) > MAX_EXPLAIN_CELLS:
        raise ConvSpecError(
            f"the explanation would compute and show {name} of {lead} x {_show(size)} = "
            f"{lead * math.prod(size)} cells, more than {MAX_EXPLAIN_CELLS}; use a smaller "
            f"--input, --kernel, --stride or --padding ({spec.describe()})")


def explain(spec: ConvSpec, x=None, w=None, g=None, *, ints: bool = False,
            seed: int = 0) -> Explanation:
    """The steps from the forward convolution of ``spec`` to its input gradient.

    Parameters
    ----------
    spec : ConvSpec
    x, w : ndarray, optional
        ``spec.input_shape`` and ``spec.weight_shape``; drawn by :func:`sample_data` if omitted.
    g : ndarray, optional
        The upstream gradient, ``spec.output_shape``. Default: the forward output ``conv(x, w)``,
        as in the original experiment (the gradient of ``sum(o*o)/2``).
    ints : bool
        Draw small integers instead of normal floats (exact, readable arrays).
    seed : int

    An array of the story larger than :data:`MAX_EXPLAIN_CELLS` is a ConvSpecError naming it.

    Returns
    -------
    Explanation

    Examples
    --------
    >>> from tconv import ConvSpec
    >>> e = explain(ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1), ints=True)
    >>> [s.key for s in e.steps]  # doctest: +NORMALIZE_WHITESPACE
    ['forward', 'dropped', 'scatter', 'zero_insertion', 'padding', 'kernel', 'convolution',
     'phases', 'matrix']
    >>> e.step("padding").facts["transpose_padding"]
    ((1, 2), (1, 2))
    """
    _check_drawable(spec)
    if x is None or w is None:
        sx, sw = sample_data(spec, ints=ints, seed=seed)
        x, w = (sx if x is None else np.asarray(x)), (sw if w is None else np.asarray(w))
    for name, a, shape in (("x", x, spec.input_shape), ("w", w, spec.weight_shape)):
        if a.shape != shape:
            raise ConvSpecError(f"{name} has shape {a.shape}, the spec needs {shape}")
    o = convolve(x, w, spec)
    g = o if g is None else np.asarray(g)
    if g.shape != spec.output_shape:
        raise ConvSpecError(f"g has shape {g.shape}, the spec's output is {spec.output_shape}")
    result = scatter.conv_transpose(g, w, spec)
    zi, stretched = _zero_insertion_step(spec, g)
    pad, padded, kinds = _padding_step(spec, stretched)
    kern, kernel = _kernel_step(spec, w)
    steps = (_forward_step(spec, x, w, o), _dropped_step(spec, x),
             _scatter_step(spec, g, w, result), zi, pad, kern,
             _convolution_step(spec, padded, kinds, kernel, g, w, result),
             _phases_step(spec, w, result), _matrix_step(spec, x, w, g, o, result))
    return Explanation(spec, x, w, g, result, steps)


# -- tconv shape --------------------------------------------------------------------------------

def sizes_text(first: int, last: int, most: int = 4) -> str:
    """``"3, 4"`` for a few consecutive sizes, ``"3..1000000002"`` for many."""
    if last - first < most:
        return ", ".join(map(str, range(first, last + 1)))
    return f"{first}..{last}"


def _choice_runs(spec: ConvSpec, dim: int) -> list[dict]:
    """The valid output_paddings of ``dim``, ``0 <= op < max(stride, dilation)``, as runs of
    consecutive values with the same verdict, each with the sizes it gives (a stride of 10**9
    has 10**9 of them: they are described by their ends, never listed).

    The transposed size is ``base + op`` (``base`` = the size for op 0): below 1 the padding
    crops everything; for ``op < stride`` the forward convolution of that size gives back the
    spec's output (the sizes collapse onto it); from ``stride`` on (allowed below the dilation)
    it gives more. This spec's own output_padding is a run of its own.
    """
    k, s, p, d = (spec.kernel_size[dim], spec.stride[dim], spec.padding[dim],
                  spec.dilation[dim])
    base = ConvSpec.transposed_size(spec.output_size[dim], k, s, p, d, 0)
    own = spec.output_padding[dim]
    cuts = sorted({0, max(s, d), min(max(1 - base, 0), max(s, d)), min(s, max(s, d)), own,
                   own + 1})
    runs = []
    for first, stop in zip(cuts, cuts[1:]):
        if first >= stop or stop > max(s, d):
            continue
        last = stop - 1
        if base + first < 1:
            runs.append({"output_padding": [first, last], "size": None, "forward_size": None,
                         "collapses": False})
            continue
        size = [base + first, base + last]
        forward = [ConvSpec.conv_size(n, k, s, p, d) for n in size]
        runs.append({"output_padding": [first, last], "size": size, "forward_size": forward,
                     "collapses": last < s})
    return runs


def shape_facts(spec: ConvSpec) -> dict:
    """The shape story of ``spec`` per spatial dim, as JSON-able data.

    For each dim: the parameters, the forward output size with its formula filled in, the
    transposed output size, the input sizes that collapse onto the output (``input_sizes``:
    first and last), and every output_padding below ``max(stride, dilation)`` as runs
    (:func:`_choice_runs`): ``[first, last]`` output_paddings, the transposed sizes they give
    (``None`` if the padding crops everything), the forward output sizes of inputs that long,
    and whether those equal ``out``. Work and size are O(1) per dim, whatever the stride.

    Examples
    --------
    >>> spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
    >>> [(r["output_padding"], r["size"]) for r in shape_facts(spec)["dims"][0]["choices"]]
    [([0, 0], [3, 3]), ([1, 1], [4, 4])]
    """
    dims = []
    for i, (n, k, s, p, d, e, m, op, sizes) in enumerate(zip(
            spec.input_size, spec.kernel_size, spec.stride, spec.padding, spec.dilation,
            spec.extents, spec.output_size, spec.output_padding, spec.input_sizes())):
        dims.append({
            "dim": i, "input": n, "kernel": k, "extent": e, "stride": s, "padding": list(p),
            "dilation": d, "output": m, "output_padding": op,
            "forward_formula": f"floor(({n} + {p[0]} + {p[1]} - {e}) / {s}) + 1 = "
                               f"{ConvSpec.conv_size(n, k, s, p, d)}",
            "transposed_formula": f"({m} - 1)*{s} - {p[0]} - {p[1]} + {e} + {op} = "
                                  f"{ConvSpec.transposed_size(m, k, s, p, d, op)}",
            "input_sizes": {"first": sizes.first, "last": sizes.last,
                            "output_padding": [sizes.output_padding(sizes.first),
                                               sizes.output_padding(sizes.last)]},
            "choices": _choice_runs(spec, i)})
    return {"spec": spec.describe(), "input_shape": spec.input_shape,
            "output_shape": spec.output_shape, "dims": dims}


# -- tconv overlap ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overlap:
    """How many kernel taps the transposed convolution adds into each output position.

    ``counts`` is the scatter of ones: a ``size``-cell input of ones, a kernel of ones, no
    padding. Its sum is ``prod(size) * prod(kernel)``. Far from the edges the counts repeat with
    period ``stride`` (``pattern``); when they differ, the output of a trained layer shows the
    same period as a checkerboard.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    size: tuple[int, ...]
    counts: np.ndarray
    patterns: tuple[tuple[int, ...], ...]    # per dim: one period of the interior counts
    even_kernels: tuple[tuple[int, ...], ...]  # per dim: kernel sizes with an even overlap

    @property
    def even(self) -> bool:
        return all(len(set(p)) == 1 for p in self.patterns)

    def to_dict(self) -> dict:
        return {"kernel": self.kernel, "stride": self.stride, "dilation": self.dilation,
                "size": self.size, "counts": self.counts.tolist(), "even": self.even,
                "patterns": self.patterns, "even_kernels": self.even_kernels,
                "total": int(self.counts.sum())}


def _ones_scatter(size, kernel, stride, dilation) -> np.ndarray:
    """Counts of kernel taps per output cell: the engine's scatter of ones."""
    spec = ConvSpec.transpose((1, 1) + tuple(size), (1, 1) + tuple(kernel), stride=stride,
                              padding=0, dilation=dilation)
    return scatter.conv_transpose(np.ones(spec.output_shape, dtype=np.int64),
                                    np.ones(spec.weight_shape, dtype=np.int64), spec)[0, 0]


#: Largest overlap map (in cells) and longest period :func:`overlap` computes and shows.
MAX_OVERLAP_CELLS = 1 << 20


def _pattern(kernel: int, stride: int, dilation: int) -> tuple[int, ...]:
    """One period of the interior of a 1-d overlap: the middle ``stride`` counts of the scatter
    of an input long enough (``K + 2`` cells) that its middle is reached by every tap.

    There, cell ``u`` gets one tap for every ``j`` with ``j*dilation = u (mod stride)`` (its
    input cell ``(u - j*dilation) / stride`` exists), so the period is the count of taps per
    residue, read from the middle cell ``(K*stride + K) // 2`` on: ``O(kernel + stride)``, not
    the ``O(K * stride)`` cells of that scatter.
    """
    extent = ConvSpec.extent(kernel, dilation)
    per_residue = np.bincount(np.arange(kernel, dtype=object) * dilation % stride
                              if kernel * dilation >= 2**62 else
                              np.arange(kernel, dtype=np.int64) * dilation % stride,
                              minlength=stride)
    start = (extent * stride + extent) // 2
    return tuple(int(c) for c in per_residue[(start + np.arange(stride)) % stride])


def even_kernels(stride: int, dilation: int, top: int) -> tuple[int, ...]:
    """The kernel sizes ``1..top`` whose overlap is even with this stride and dilation.

    Taps ``j*dilation`` cover the residues modulo the stride in cycles of ``stride/g`` taps
    (``g = gcd(stride, dilation)``), each reaching a multiple of ``g`` once per cycle. With
    ``g > 1`` the other residues get no tap: never even (unless the stride is 1). With
    ``g == 1`` a kernel of ``c`` taps gives ``floor(c/stride)`` or one more to each residue:
    even exactly when the stride divides ``c``. (tests/test_explain.py checks this against the
    periods of :func:`_pattern` one kernel size at a time.)
    """
    if stride == 1:
        return tuple(range(1, top + 1))
    if math.gcd(stride, dilation) > 1:
        return ()
    return tuple(range(stride, top + 1, stride))


def overlap(kernel, stride, dilation=1, *, dims: int = 2, size=6,
            max_kernel: int | None = None) -> Overlap:
    """The overlap map of a transposed convolution and whether it is even.

    Parameters
    ----------
    kernel, stride, dilation : int or sequence of int (one per dim)
    dims : int
        Spatial dims of the map.
    size : int or sequence of int
        Input cells per dim.
    max_kernel : int, optional
        Largest kernel size tried for ``even_kernels`` (default ``max(3*stride, kernel+stride)``).

    A map of more than :data:`MAX_OVERLAP_CELLS` cells, or a period longer than that, is a
    ConvSpecError naming the sizes: it can be neither computed in reasonable time nor shown.

    Examples
    --------
    >>> ov = overlap(3, 2, dims=1, size=4)
    >>> ov.counts.tolist(), ov.patterns, ov.even
    ([1, 1, 2, 1, 2, 1, 2, 1, 1], ((2, 1),), False)
    >>> overlap(4, 2, dims=1).even
    True
    """
    spec = ConvSpec.transpose((1, 1) + ((size,) * dims if np.isscalar(size) else tuple(size)),
                              (1, 1) + ((kernel,) * dims if np.isscalar(kernel) else tuple(kernel)),
                              stride=stride, dilation=dilation)
    cells = math.prod(spec.input_size)
    if cells > MAX_OVERLAP_CELLS or max(spec.stride) > MAX_OVERLAP_CELLS:
        raise ConvSpecError(
            f"the overlap map of input {_show(spec.output_size)}, kernel "
            f"{_show(spec.kernel_size)}, stride {_show(spec.stride)}, dilation "
            f"{_show(spec.dilation)} would have {cells} cells"
            + (f" ({_show(spec.input_size)})" if dims > 1 else "")
            + f" and a period of {_show(spec.stride)}, more than {MAX_OVERLAP_CELLS} to compute "
            f"and show; use a smaller --size, --kernel or --stride")
    counts = _ones_scatter(spec.output_size, spec.kernel_size, spec.stride, spec.dilation)
    patterns, evens = [], []
    for k, s, d in zip(spec.kernel_size, spec.stride, spec.dilation):
        patterns.append(_pattern(k, s, d))
        evens.append(even_kernels(s, d, max_kernel or max(3 * s, k + s)))
    return Overlap(spec.kernel_size, spec.stride, spec.dilation, spec.output_size, counts,
                   tuple(patterns), tuple(evens))


def pattern_text(pattern, most: int = 24) -> str:
    """The counts of one period, ``2 1``; a long period run-length coded, ``0x499 1x3 0x498``
    (and cut after ``most`` runs)."""
    if len(pattern) <= most:
        return " ".join(map(str, pattern))
    runs = [(v, len(list(group))) for v, group in itertools.groupby(pattern)]
    words = [f"{v}x{n}" if n > 1 else str(v) for v, n in runs]
    if len(words) > most:
        words = words[:most] + ["..."]
    return " ".join(words) + f" ({len(pattern)} counts)"


def overlap_summary(ov: Overlap) -> str:
    """What the overlap map says, in words: the total, the interior pattern, even or not, and
    which kernel sizes would make it even."""
    lines = [f"{int(ov.counts.sum())} taps in all = {math.prod(ov.size)} input cells x "
             f"{math.prod(ov.kernel)} kernel taps."]
    per_dim = []
    for pattern, evens, k, s, d in zip(ov.patterns, ov.even_kernels, ov.kernel, ov.stride,
                                       ov.dilation):
        line = (f"away from the edges the counts repeat {pattern_text(pattern)} "
                f"(period = stride {s}): ")
        line += ("even." if len(set(pattern)) == 1 else
                 "uneven, the pattern behind checkerboard artifacts (Odena et al. 2016).")
        tried = max(3 * s, k + s)
        if evens:
            multiples = evens == tuple(range(s, tried + 1, s))
            line += (f" Even with stride {s}, dilation {d} for kernel sizes "
                     f"{', '.join(map(str, evens))}"
                     + (" (multiples of the stride)." if multiples else "."))
        else:
            line += (f" No kernel size up to {tried} is even with stride {s} and dilation {d}: "
                     f"some cells of each period get no tap at all.")
        per_dim.append(line)
    lines.append(per_dim_text(per_dim))
    if len(ov.patterns) > 1:
        inner = sorted({math.prod(c) for c in itertools.product(*map(set, ov.patterns))},
                       reverse=True)
        lines.append(f"In {len(ov.patterns)}-d the counts multiply: away from the edges each "
                     f"output cell gets {' or '.join(map(str, inner))} taps.")
    return "\n".join(lines)
