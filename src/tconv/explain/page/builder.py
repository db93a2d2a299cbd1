"""The explainer as one self-contained, interactive HTML page (``tconv explain --html``).

:func:`page_data` turns the story of a 1-d or 2-d spec (:func:`tconv.explain.explain`) into
JSON-able data for the browser, and :func:`render` puts that data into the page template of
:mod:`tconv.explain.page` with its script and styles inline: no file, font or script is
fetched when the page is viewed. The browser only draws and looks up; every number and every
incidence is computed here by the engine.

**What each cell is.** The arrays of the story are of three sorts, and each cell gets one or two
*keys* that name it in every panel:

* rearrangements of ``x``, ``g`` or ``w`` (the padded input, the stretched gradient, the flipped
  and channel-swapped kernel, the phase sub-kernels). The same story told on arrays of cell
  numbers (``x`` numbered ``1..X``, ``g`` from ``X + 1``, ``w`` after them) puts into each such
  cell the number of the ``x``, ``g`` or ``w`` cell it holds: keys ``x5``, ``g2``, ``w7``. A zero
  (padding, an inserted zero) holds none; it is named by its position on the padded input
  (``p``) or the stretched gradient (``s``).
* sums laid out like ``x`` (``dL/dx``), like ``g`` (``o = conv(x, w)``, which is ``g``) or like the
  padded input (the scatter's copies, the windows reading each cell): named by position.
* the matrix ``C``: entry ``(r, c)`` is ``m{r}_{c}``, row ``r`` the ``g`` cell, column ``c`` the
  ``x`` cell.

Flat indices are C order over ``(C, *spatial)`` of sample 0 (``(C_out, C_in/groups, *k)`` for
``w``).

**The incidence.** One *term* per product of the forward convolution ``o = conv(x, w)``: output
cell ``g``, padded input cell ``p``, kernel tap ``w``. The terms are the stored entries of the
forward matrix (:func:`tconv.methods.matrix.forward_matrix`) of the same convolution over the
padded input with a weight of tap numbers. A term whose ``p`` lies inside ``x`` is an entry of
``C``: ``o[g] += w[t] * x[p]`` and, transposed, ``dL/dx[p] += g[g] * w[t]``. The others are taps
that fall into the forward padding: the scatter stamps them onto the border it then crops. The
gather view's windows (the cells of the stretched, padded gradient under the flipped kernel for
each cell of ``x``) come from :func:`tconv.forward.correlate` of a numbered stretched gradient
with one-hot kernels.
"""
from __future__ import annotations

import html
import itertools
import json
import math
from importlib import resources

import numpy as np

from ... import flags
from ..._arrays import insert_zeros, pad_or_crop
from ...methods import matrix
from ...methods.direct import correlate
from ...spec import ConvSpec, ConvSpecError
from .. import story

__all__ = ["MAX_TERMS", "MAX_CELLS", "check_page_size", "page_data", "render", "write",
           "page_sizes"]

#: Most products (output cells x kernel taps x channel pairs) a page lists.
MAX_TERMS = 20_000
#: Most cells of one array a page draws (channels included; for x, samples too).
MAX_CELLS = 4096

#: Panels that are sums laid out by position; every other panel is a rearrangement of x, g or w.
_SUMS = {("forward", "o = conv"): "g", ("dropped", "windows reading"): "reads",
         ("scatter", "sum of the copies"): "p", ("scatter", "dL/dx"): "x",
         ("convolution", "dL/dx"): "x", ("phases", "dL/dx by phase"): "x", ("matrix", "C"): "m"}
#: Rearrangements whose zeros are named by position: p (padded input), s (stretched gradient).
_POSITIONS = {("dropped", "x padded"): "p", ("padding", "g stretched"): "s",
              ("convolution", "g stretched"): "s"}
#: The panels of the three views, as (step key, panel name start).
VIEWS = {
    "scatter": [("scatter", "g ="), ("forward", "w (kernel)"), ("scatter", "sum of the copies"),
                ("scatter", "dL/dx")],
    "gather": [("convolution", "g stretched"), ("convolution", "flipped"),
               ("convolution", "dL/dx")],
    "forward": [("dropped", "x padded"), ("forward", "w (kernel)"), ("forward", "o = conv")],
    "matrix": [("matrix", "C")],
}


def _role(step: str, name: str, table: dict) -> str | None:
    for (key, start), role in table.items():
        if key == step and name.startswith(start):
            return role
    return None


# -- sizes, checked before anything is allocated ------------------------------------------------

def _one_sample(spec: ConvSpec) -> ConvSpec:
    """``spec`` with batch 1: the page shows sample 0 (every sample has the same incidence)."""
    return ConvSpec.forward((1,) + spec.input_shape[1:], spec.weight_shape, stride=spec.stride,
                            padding=spec.padding, dilation=spec.dilation, groups=spec.groups,
                            output_padding=spec.output_padding)


def _padded_spec(spec: ConvSpec) -> ConvSpec:
    """The same convolution over the padded input (padding 0): its input is ``in + lo + hi``
    cells per dim and every kernel tap of every window lands on one of them."""
    return ConvSpec.transpose((1, spec.out_channels) + spec.output_size, spec.weight_shape,
                              stride=spec.stride, padding=0, dilation=spec.dilation,
                              groups=spec.groups, output_padding=spec.output_padding)


def page_sizes(spec: ConvSpec) -> dict:
    """What a page of ``spec`` would hold: the products it lists and its largest arrays.

    Sizes only (no array is made): ``terms`` = C_out * C_in/groups * prod(out) * prod(kernel);
    per array, its cells with channels (``x`` with every sample, since the data is drawn for
    the whole batch).
    """
    padded = _padded_spec(spec).input_size
    stretched = tuple(ConvSpec.full_size(n, k, 1, d) for n, k, d in
                      zip(spec.input_size, spec.kernel_size, spec.dilation))
    cells = {
        "x": math.prod(spec.input_shape),
        "w": math.prod(spec.weight_shape),
        "g": spec.out_channels * math.prod(spec.output_size),
        "padded input": spec.in_channels * math.prod(padded),
        "stretched gradient": spec.out_channels * math.prod(stretched),
    }
    terms = (spec.out_channels * (spec.in_channels // spec.groups)
             * math.prod(spec.output_size) * math.prod(spec.kernel_size))
    return {"terms": terms, "cells": cells}


def check_page_size(spec: ConvSpec) -> None:
    """Raise :class:`ConvSpecError` for a spec the page cannot draw: more than 2 spatial dims,
    more than :data:`MAX_TERMS` products or an array of more than :data:`MAX_CELLS` cells."""
    if spec.ndim > 2:
        raise ConvSpecError(
            f"the page draws 1-d and 2-d convolutions; this spec has {spec.ndim} spatial dims "
            f"(tconv explain without --html prints any number of dims)")
    sizes = page_sizes(spec)
    name, cells = max(sizes["cells"].items(), key=lambda kv: kv[1])
    if sizes["terms"] > MAX_TERMS or cells > MAX_CELLS:
        raise ConvSpecError(
            f"the page would list {sizes['terms']} products (C_out {spec.out_channels} x C_in/"
            f"groups {spec.in_channels // spec.groups} x {math.prod(spec.output_size)} output "
            f"cells x {math.prod(spec.kernel_size)} kernel taps) and draw a {name} of {cells} "
            f"cells; a page holds at most {MAX_TERMS} products and {MAX_CELLS} cells per array: "
            f"use a smaller input, kernel or fewer channels")


# -- the data -----------------------------------------------------------------------------------

def _numbered(spec: ConvSpec):
    """``x``, ``g`` and ``w`` of ``spec`` filled with distinct cell numbers: x ``1..X``, g
    ``X+1..X+G``, w after them (0 stays free for the zeros the story inserts)."""
    sizes = [math.prod(s) for s in (spec.input_shape, spec.output_shape, spec.weight_shape)]
    starts = np.cumsum([1] + sizes[:-1])
    return tuple(np.arange(start, start + n, dtype=np.int64).reshape(shape)
                 for start, n, shape in zip(starts, sizes,
                                            (spec.input_shape, spec.output_shape,
                                             spec.weight_shape)))


class _Keys:
    """Names cells: decodes cell numbers, tags slices with the channels they belong to."""

    def __init__(self, spec: ConvSpec):
        self.spec = spec
        self.nx = math.prod(spec.input_shape)
        self.ng = math.prod(spec.output_shape)
        self.cin_g = spec.in_channels // spec.groups
        self.cout_g = spec.out_channels // spec.groups
        self.taps = math.prod(spec.kernel_size)
        self.n_in = math.prod(spec.input_size)
        self.n_out = math.prod(spec.output_size)

    def entity(self, number: int) -> str:
        if number <= 0:
            return ""
        i = number - 1
        if i < self.nx:
            return f"x{i}"
        if i < self.nx + self.ng:
            return f"g{i - self.nx}"
        return f"w{i - self.nx - self.ng}"

    def tag(self, key: str) -> dict:
        """The channels a cell belongs to: ``ci`` (x side), ``co`` (g side) or both (w)."""
        kind, i = key[0], int(key[1:])
        if kind == "x":
            return {"ci": i // self.n_in}
        if kind == "g":
            return {"co": i // self.n_out}
        co, ci_local = i // (self.cin_g * self.taps), (i // self.taps) % self.cin_g
        return {"co": co, "ci": (co // self.cout_g) * self.cin_g + ci_local}


def _flat(a) -> list:
    return np.asarray(a).ravel().tolist()


def _slices(step: str, real: story.Panel, numbered: story.Panel, keys: _Keys,
            p_to_x_key: list) -> list:
    """The panel's slices (one per channel of sample 0, one per channel pair of a kernel, or
    one for a plain array), each with its values, kinds, crop marks, cell keys and the
    channels it shows."""
    role = _role(step, real.name, _SUMS)
    position = _role(step, real.name, _POSITIONS)
    spec = keys.spec
    out = []
    if real.lead == 0:
        if role == "m":    # C: rows are g cells, columns x cells
            rows, cols = real.values.shape
            names = [f"m{r}_{c}" if k == "data" else ""
                     for (r, c), k in zip(itertools.product(range(rows), range(cols)),
                                          real.kinds.ravel())]
            return [{"values": _flat(real.values), "kinds": _flat(real.kinds), "keys": names}]
        # the windows reading each padded cell: the same for every x channel
        n = real.values.size
        return [{"ci": ci, "values": _flat(real.values), "kinds": _flat(real.kinds),
                 "keys": [f"p{ci * n + i}" for i in range(n)]} for ci in range(spec.in_channels)]
    for lead in np.ndindex(*real.values.shape[:2]):   # (0, channel), or a kernel's (C, C)
        values, numbers = real.values[lead], numbered.values[lead]
        c = lead[1]
        n = values.size
        if role is None:
            names = [keys.entity(int(v)) for v in numbers.ravel()]
            named = [k for k in names if k]
            # a stretched gradient may hold no g cell at all (every window in the padding)
            tag = keys.tag(named[0]) if named else ({"co": c} if position == "s" else {"ci": c})
            if position:
                names = [f"{k} {position}{c * n + i}".strip() for i, k in enumerate(names)]
        else:
            kind = "p" if role == "p" else role
            names = [f"{kind}{c * n + i}" for i in range(n)]
            if role == "p":   # a padded cell inside x is also that x cell
                names = [f"{k} {x}".strip() for k, x in zip(names, p_to_x_key[c])]
            tag = {"co": c} if role == "g" else {"ci": c}
        entry = {**tag, "values": _flat(values), "keys": names}
        if real.kinds is not None:
            entry["kinds"] = _flat(real.kinds[lead])
        if real.cropped is not None:
            entry["cropped"] = _flat(real.cropped[lead])
        out.append(entry)
    return out


def _terms(spec: ConvSpec, x, w, g, xmap) -> dict:
    """Every product of the forward convolution of sample 0, from the forward matrix over the
    padded input with a weight of tap numbers (columns: g, p, x, w, g*w, x*w)."""
    numbers = np.arange(1, w.size + 1, dtype=np.int64).reshape(w.shape)
    entries = matrix.forward_matrix(numbers, _padded_spec(spec)).tocoo()
    order = np.lexsort((entries.data, entries.row))
    rows, cols = entries.row[order], entries.col[order]
    taps = entries.data[order].astype(np.int64) - 1
    xs = xmap.ravel()[cols]
    xpad = pad_or_crop(x, spec.padding)[0].ravel()
    return {"g": rows.tolist(), "p": cols.tolist(), "x": xs.tolist(), "w": taps.tolist(),
            "gw": (g[0].ravel()[rows] * w.ravel()[taps]).tolist(),
            "xw": (xpad[cols] * w.ravel()[taps]).tolist()}


def _windows(spec: ConvSpec, stretched_size) -> list:
    """Per cell of x (spatial, flat), the stretched-gradient cells (spatial, flat) under the
    flipped kernel's taps, in C order of the flipped kernel: the forward convolution's own
    windows, from :func:`tconv.forward.correlate` of cell numbers with one-hot kernels."""
    numbers = np.arange(math.prod(stretched_size), dtype=np.int64).reshape(
        (1, 1) + tuple(stretched_size))
    per_tap = []
    for tap in itertools.product(*map(range, spec.kernel_size)):
        onehot = np.zeros((1, 1) + spec.kernel_size, dtype=np.int64)
        onehot[(0, 0) + tap] = 1
        per_tap.append(correlate(numbers, onehot, spec.input_size, (1,) * spec.ndim,
                                 spec.dilation, 1)[0, 0].ravel())
    return np.stack(per_tap, axis=1).tolist()


def page_data(spec: ConvSpec, *, ints: bool = False, seed: int = 0) -> dict:
    """The page of ``spec``: every step, the views, the matrix, the incidence, as JSON-able data.

    Parameters
    ----------
    spec : ConvSpec
        1-d or 2-d; the page shows sample 0 of the data :func:`tconv.explain.sample_data`
        draws for it (the same numbers as ``tconv explain``).
    ints : bool
        Small integer data: exact, readable numbers.
    seed : int

    Returns
    -------
    dict
        ``spec`` (parameters, shapes, the flags that rebuild it), ``steps`` (title, text,
        panels; each panel a list of slices with ``values``, ``kinds``, ``keys`` and the
        channels ``ci``/``co`` it shows), ``views`` (the panels of the scatter, gather and
        forward views as ``[step, panel]`` indices), ``values`` and ``shapes`` of ``x``, ``g``,
        ``w``, ``dx``, ``o`` and the padded canvas ``p`` (flat, sample 0), ``terms`` (the
        incidence, columns ``g, p, x, w, gw, xw``), ``windows`` and ``p_to_x``.

    Raises
    ------
    ConvSpecError
        More than 2 spatial dims or a page too large (:func:`check_page_size`).

    Examples
    --------
    >>> spec = ConvSpec.forward((1, 1, 4, 4), (1, 1, 3, 3), stride=2, padding=1)
    >>> data = page_data(spec, ints=True)
    >>> len(data["terms"]["g"]), sum(x >= 0 for x in data["terms"]["x"])   # 4 x 9; 25 in C
    (36, 25)
    """
    check_page_size(spec)
    x_all, w = story.sample_data(spec, ints=ints, seed=seed)
    one = _one_sample(spec)
    x = x_all[:1]
    e = story.explain(one, x, w)
    nx, ng, nw = _numbered(one)
    e_num = story.explain(one, nx, nw, ng)
    keys = _Keys(one)

    padded_size = _padded_spec(one).input_size
    xmap = pad_or_crop(np.arange(1, x.size + 1).reshape(x.shape), one.padding)[0] - 1
    stretched_num = pad_or_crop(insert_zeros(np.arange(1, e.g.size + 1).reshape(e.g.shape),
                                             one.stride), one.transpose_padding)[0]
    stretched_size = stretched_num.shape[1:]
    n_pad = math.prod(padded_size)
    p_to_x_key = [[f"x{v}" if v >= 0 else "" for v in xmap[c].ravel()]
                  for c in range(one.in_channels)]

    steps, views = [], {name: [] for name in VIEWS}
    for s_index, (step, num_step) in enumerate(zip(e.steps, e_num.steps)):
        panels = []
        for p_index, (real, numbered) in enumerate(zip(step.panels, num_step.panels)):
            spatial = list(real.values.shape[2:] if real.lead == 2 else real.values.shape)
            panels.append({"name": real.name, "shape": spatial,
                           "role": _role(step.key, real.name, _SUMS) or "ids",
                           "slices": _slices(step.key, real, numbered, keys, p_to_x_key)})
            for view, members in VIEWS.items():
                for key, start in members:
                    if step.key == key and real.name.startswith(start):
                        views[view].append((members.index((key, start)), [s_index, p_index]))
        steps.append({"key": step.key, "title": step.title, "text": step.text,
                      "panels": panels})
    views = {name: [ref for _, ref in sorted(refs)] for name, refs in views.items()}

    x_to_p = np.full(x.size, -1, dtype=np.int64)
    inside = xmap.ravel() >= 0
    x_to_p[xmap.ravel()[inside]] = np.flatnonzero(inside)
    canvas = e.step("scatter").panel("sum of the copies").values[0]
    return {
        "version": 1,
        "spec": {
            "describe": spec.describe(), "flags": " ".join(flags.spec_flags(spec)),
            "batch": spec.batch, "ndim": spec.ndim, "in_channels": spec.in_channels,
            "out_channels": spec.out_channels, "groups": spec.groups,
            "input_size": list(spec.input_size), "output_size": list(spec.output_size),
            "kernel_size": list(spec.kernel_size), "stride": list(spec.stride),
            "padding": [list(p) for p in spec.padding], "dilation": list(spec.dilation),
            "output_padding": list(spec.output_padding),
            "transpose_padding": [list(p) for p in spec.transpose_padding],
            "padded_size": list(padded_size), "stretched_size": list(stretched_size),
        },
        "ints": bool(ints), "seed": int(seed),
        "steps": steps, "views": views,
        "shapes": {"x": list(x.shape[1:]), "g": list(e.g.shape[1:]), "w": list(w.shape),
                   "p": [one.in_channels] + list(padded_size),
                   "s": [one.out_channels] + list(stretched_size)},
        "values": {"x": _flat(x[0]), "g": _flat(e.g[0]), "w": _flat(w), "dx": _flat(e.result[0]),
                   "p": _flat(canvas), "s": _flat(
                       e.step("padding").panel("g stretched").values[0])},
        "terms": _terms(one, x, w, e.g, xmap),
        "windows": _windows(one, stretched_size),
        "p_to_x": xmap.ravel().tolist(), "x_to_p": x_to_p.tolist(), "n_pad": n_pad,
        "kinds": {k: story.kind_label(k) for k in story.KINDS},
    }


# -- the page -----------------------------------------------------------------------------------

def _asset(name: str) -> str:
    return resources.files("tconv.explain.page").joinpath(name).read_text(encoding="utf-8")


def _json_for_script(data) -> str:
    """JSON that cannot end its ``<script>`` element early: ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


#: The text fields of the playground's spec form: (name, label, default, most characters).
FORM_FIELDS = (("size", "input size", "4", 64), ("kernel", "kernel", "3", 64),
               ("stride", "stride", "2", 64), ("padding", "padding", "1", 64),
               ("dilation", "dilation", "1", 64),
               ("output_padding", "output_padding <small>(blank: derived)</small>", "", 64),
               ("in_channels", "in channels", "1", 8), ("out_channels", "out channels", "1", 8),
               ("groups", "groups", "1", 8), ("seed", "seed", "0", 10))


def _form_fields() -> str:
    """The form's text fields, each with its label and the slot its error is shown in."""
    rows = []
    for name, label, default, most in FORM_FIELDS:
        numeric = ' inputmode="numeric"' if most < 64 else ""
        rows.append(
            f'    <div class="field"><label for="f-{name}">{label}</label>\n'
            f'      <input id="f-{name}" name="{name}" value="{default}" maxlength="{most}"'
            f'{numeric} aria-describedby="err-{name}">\n'
            f'      <span class="field-error" id="err-{name}"></span></div>')
    return "\n".join(rows)


def render(data: dict | None, *, serve: bool = False) -> str:
    """The page: the template with its styles, script and ``data`` inline.

    ``serve=True`` makes the playground of ``tconv serve``: the spec form is shown and the
    page may fetch new data from the server that sent it (its Content-Security-Policy allows
    ``connect-src 'self'``); a file page may connect nowhere.
    """
    page = _asset("template.html")
    title = "tconv explain" + (f": {data['spec']['describe']}" if data else "")
    parts = {
        "{{TITLE}}": html.escape(title),
        "{{CONNECT}}": "'self'" if serve else "'none'",
        "{{STYLE}}": _asset("page.css"),
        "{{SCRIPT}}": _asset("page.js"),
        "{{DATA}}": _json_for_script({"serve": serve, "page": data}),
        "{{FIELDS}}": _form_fields(),
    }
    for mark, text in parts.items():
        page = page.replace(mark, text)
    return page


def write(spec: ConvSpec, path, *, ints: bool = False, seed: int = 0) -> str:
    """Write the page of ``spec`` to ``path`` (UTF-8); return the path."""
    text = render(page_data(spec, ints=ints, seed=seed))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)
