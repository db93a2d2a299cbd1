"""Figures and animations of tconv's explanations: PNG per step, GIF of both views, overlap, C.

Everything drawn comes from :mod:`tconv.explain` and :mod:`tconv.animation`; this module only
lays out cells. matplotlib and pillow (the optional ``plot`` extra) are imported inside the
functions that draw, with the Agg canvas and no pyplot state; without them
:class:`PlotUnavailable` says so in one line.

Every array is drawn as a grid of cells with its numbers in them, its row and column indices
around it and its name above. Cell colours say what a cell is (:data:`tconv.explain.KINDS`),
hatching marks the forward padding that the transposed convolution crops, a red outline the
cells the kernel touches, a black border the cells of ``x`` inside the padded canvas.
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .story import Explanation, MatrixView, Overlap, Panel, kind_label, overlap_summary

__all__ = ["PlotUnavailable", "require", "save_steps", "save_animation", "animation_images",
           "save_overlap", "save_matrix", "DPI", "CELL"]

#: Pixels per inch of the PNG figures.
DPI = 100
#: Pixels per inch of the GIF frames (smaller files; numbers stay readable).
GIF_DPI = 90
#: Inches per array cell (shrunk for very wide figures).
CELL = 0.42
#: Widest figure, in inches, before cells shrink.
MAX_WIDTH = 13.0
#: Cells between two arrays.
GAP = 1.2

KIND_COLOURS = {
    "data": "#ffffff",
    "inserted": "#fff0a8",
    "padding": "#dcdcdc",
    "output_padding": "#ffb366",
    "unread": "#f7b6c8",
    "empty": "#f0f0f0",
}
PHASE_COLOURS = ["#b9d7ff", "#c4ecc4", "#ffd9a8", "#e8c8f0", "#c8eeee", "#f5e3b5", "#d9d0ff",
                 "#ffd0d0", "#d8e8b0"]
TAP_COLOURS = ["#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462", "#b3de69",
               "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f"]
WINDOW = "#d62728"
CROP_EDGE = "#8c8c8c"


class PlotUnavailable(RuntimeError):
    """matplotlib or pillow is missing: figures need the ``plot`` extra."""


def require():
    """Import matplotlib (Agg, no pyplot) and pillow, or raise :class:`PlotUnavailable`."""
    try:
        import matplotlib  # noqa: F401
        import PIL  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise PlotUnavailable(
            f"figures need matplotlib and pillow, the 'plot' extra (pip install 'tconv[plot]'): "
            f"{e}") from None
    return Figure, FigureCanvasAgg


# -- one array as a block of cells ----------------------------------------------------------------

def _fmt(v) -> str:
    """A cell's number: integers exactly, floats with 2 significant decimals at most."""
    if isinstance(v, (float, np.floating)):
        if np.isnan(v):
            return ""
        if float(v).is_integer() and abs(v) < 1000:
            return str(int(v))
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def _as_2d(a) -> np.ndarray | None:
    return None if a is None else (np.asarray(a).reshape(1, -1) if np.ndim(a) == 1
                                   else np.asarray(a))


@dataclass
class _Block:
    """One 2-d array to draw (1-d arrays are one row)."""

    values: np.ndarray
    title: str
    kinds: np.ndarray | None = None
    cropped: np.ndarray | None = None
    outline: np.ndarray | None = None
    region: tuple[slice, slice] | None = None    # black border, e.g. x inside the canvas
    colours: np.ndarray | None = None            # explicit face colours (overrides kinds)
    texts: np.ndarray | None = None              # explicit cell texts (overrides values)
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None
    title_chars: int | None = None

    def __post_init__(self):
        if np.ndim(self.values) == 1 and self.row_labels is None:
            self.row_labels = [""]
        self.values = _as_2d(self.values)
        for name in ("kinds", "cropped", "outline", "colours", "texts"):
            setattr(self, name, _as_2d(getattr(self, name)))
        if self.region is not None and len(self.region) == 1:
            self.region = (slice(0, 1),) + tuple(self.region)

    @property
    def rows(self) -> int:
        return self.values.shape[0]

    @property
    def cols(self) -> int:
        return self.values.shape[1]

    def title_lines(self) -> list[str]:
        """The title wrapped to the block (about 5 bold characters per cell), 16 at least."""
        width = self.title_chars or max(int((self.left + self.cols) * 5), 16)
        return textwrap.wrap(self.title, width, break_on_hyphens=False) or [""]

    @property
    def left(self) -> float:
        """Cells left of the grid for the row labels."""
        longest = max(map(len, self.row_labels)) if self.row_labels is not None else 1
        return 0.35 + 0.17 * longest

    @property
    def header(self) -> float:
        """Cells above the grid: the title lines and the column labels."""
        longest = max(map(len, self.col_labels)) if self.col_labels else 0
        labels = 0.5 if not self.col_labels else 0.3 + 0.17 * longest
        return 0.55 * len(self.title_lines()) + labels

    @property
    def width(self) -> float:
        """Cells across: the grid and its labels, or the title if that is wider."""
        title = max(map(len, self.title_lines())) * 0.2 + 0.3
        return self.left + max(self.cols, title)

    @property
    def height(self) -> float:
        return self.header + self.rows

    def kinds_used(self) -> set[str]:
        return set() if self.kinds is None or self.colours is not None else set(
            np.unique(self.kinds))


def _draw_block(ax, block: _Block, x0: float, y0: float, cell_pt: float) -> None:
    """Draw ``block`` with its top-left corner (title included) at ``(x0, y0)`` in cell units."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle

    gx, gy = x0 + block.left, y0 + block.header
    for i, line in enumerate(block.title_lines()):
        ax.text(gx, y0 + 0.3 + 0.55 * i, line, fontsize=9, fontweight="bold", va="center",
                ha="left")
    small = min(7.0, cell_pt * 0.42)
    cols = block.col_labels or [str(c) for c in range(block.cols)]
    rows = block.row_labels if block.row_labels is not None else [
        str(r) for r in range(block.rows)]
    for c, label in enumerate(cols):
        ax.text(gx + c + 0.5, gy - 0.12, label, fontsize=small, color="#777777", ha="center",
                va="bottom", rotation=90 if block.col_labels else 0)
    for r, label in enumerate(rows):
        ax.text(gx - 0.12, gy + r + 0.5, label, fontsize=small, color="#777777", ha="right",
                va="center")
    faces, rects = [], []
    for r, c in np.ndindex(block.rows, block.cols):  # face colours in C order
        rects.append(Rectangle((gx + c, gy + r), 1, 1))
        if block.colours is not None:
            faces.append(block.colours[r, c])
        elif block.kinds is not None:
            kind = str(block.kinds[r, c])
            faces.append(_kind_colour(kind))
        else:
            faces.append(KIND_COLOURS["data"])
    ax.add_collection(PatchCollection(rects, facecolors=faces, edgecolors="#9a9a9a",
                                      linewidths=0.6, antialiased=False))
    if block.cropped is not None:
        for r, c in zip(*np.nonzero(block.cropped)):
            ax.add_patch(Rectangle((gx + c, gy + r), 1, 1, fill=False, hatch="///",
                                   edgecolor=CROP_EDGE, linewidth=0, antialiased=False))
    if block.region is not None:
        (r0, r1), (c0, c1) = [(s.start, s.stop) for s in block.region]
        ax.add_patch(Rectangle((gx + c0, gy + r0), c1 - c0, r1 - r0, fill=False,
                               edgecolor="black", linewidth=2.4, zorder=4, antialiased=False))
    if block.outline is not None:
        for r, c in zip(*np.nonzero(block.outline)):
            ax.add_patch(Rectangle((gx + c + 0.06, gy + r + 0.06), 0.88, 0.88, fill=False,
                                   edgecolor=WINDOW, linewidth=2.2, zorder=5,
                                   antialiased=False))
    if cell_pt >= 13:
        for r, c in np.ndindex(block.rows, block.cols):
            text = block.texts[r, c] if block.texts is not None else _fmt(block.values[r, c])
            if not text:
                continue
            muted = block.cropped is not None and block.cropped[r, c]
            short = len(text) <= 4
            size = min(8.5 if short else 7.5, cell_pt * (0.42 if short else 0.3))
            ax.text(gx + c + 0.5, gy + r + 0.52, text, fontsize=size, ha="center",
                    va="center", color="#555555" if muted else "black", zorder=6,
                    bbox=dict(boxstyle="square,pad=0.12", facecolor=faces[r * block.cols + c],
                              edgecolor="none") if muted else None)


def _kind_colour(kind: str) -> str:
    if kind.startswith("phase"):
        return PHASE_COLOURS[int(kind[5:]) % len(PHASE_COLOURS)]
    return KIND_COLOURS.get(kind, KIND_COLOURS["data"])


def _arrange(blocks: list[_Block], max_cells: float) -> tuple[list[tuple[float, float]], float,
                                                                float]:
    """Left to right, wrapping into rows ``max_cells`` wide: positions, total width, height."""
    edge = 0.15                     # keeps the outer grid lines and outlines inside the axes
    positions, x, y, row_h, width = [], edge, edge, 0.0, 0.0
    for b in blocks:
        if x > edge and x + b.width > max_cells:
            x, y, row_h = edge, y + row_h + 0.6, 0.0
        positions.append((x, y))
        width = max(width, x + b.width)
        x += b.width + GAP
        row_h = max(row_h, b.height)
    return positions, width + edge, y + row_h + edge


def _legend(blocks: list[_Block]) -> list:
    """Legend handles for what the blocks use: kinds, hatching, outline, region."""
    from matplotlib.patches import Patch

    kinds = sorted(set().union(*(b.kinds_used() for b in blocks)),
                   key=lambda k: (k.startswith("phase"), k))
    handles = [Patch(facecolor=_kind_colour(k), edgecolor="#9a9a9a", label=kind_label(k))
               for k in kinds if not (k == "data" and len(kinds) == 1)]
    if any(b.cropped is not None and b.cropped.any() for b in blocks):
        handles.append(Patch(facecolor="white", edgecolor=CROP_EDGE, hatch="///",
                             label="forward padding: cropped, not part of x"))
    if any(b.region is not None for b in blocks):
        handles.append(Patch(facecolor="white", edgecolor="black", linewidth=2.2,
                             label="x = the cells kept (dL/dx)"))
    if any(b.outline is not None and b.outline.any() for b in blocks):
        handles.append(Patch(facecolor="white", edgecolor=WINDOW, linewidth=2.2,
                             label="the kernel now / the current cell"))
    return handles


@dataclass
class _Layout:
    """A figure of blocks with a title, a paragraph and a legend, sized in inches."""

    blocks: list[_Block]
    positions: list[tuple[float, float]]
    width_cells: float
    height_cells: float
    cell: float
    fig_width: float
    fig_height: float
    text_lines: list[str]
    legend_rows: int
    dpi: int = DPI

    @property
    def pixels(self) -> tuple[int, int]:
        """Width and height of the rendered figure in pixels."""
        return round(self.fig_width * self.dpi), round(self.fig_height * self.dpi)


def _layout(blocks: list[_Block], text: str, *, min_width: float = 8.0, legend=None,
            text_lines: int | None = None, size=None, dpi: int = DPI) -> _Layout:
    max_cells = MAX_WIDTH / CELL
    positions, w_cells, h_cells = _arrange(blocks, max_cells)
    cell = min(CELL, (MAX_WIDTH - 0.6) / max(w_cells, 1))
    fig_w = max(w_cells * cell + 0.8, min_width)
    lines = [line for para in text.split("\n")
             for line in (textwrap.wrap(para, int((fig_w - 0.7) * 72 / (9 * 0.56))) or [""])]
    n_text = max(len(lines), text_lines or 0)
    handles = legend if legend is not None else _legend(blocks)
    legend_rows = math.ceil(len(handles) / 2)
    fig_h = 0.5 + 0.2 * n_text + 0.25 + h_cells * cell + 0.3 * legend_rows + 0.3
    if size is not None:
        fig_w, fig_h = size
    return _Layout(blocks, positions, w_cells, h_cells, cell, round(fig_w * dpi) / dpi,
                   round(fig_h * dpi) / dpi, lines, legend_rows, dpi)


def _render(layout: _Layout, title: str, *, legend=None, extra=None):
    """A Figure drawn from a layout (``extra(ax)`` may add to the cell axes)."""
    Figure, FigureCanvasAgg = require()
    fig = Figure(figsize=(layout.fig_width, layout.fig_height), dpi=layout.dpi)
    FigureCanvasAgg(fig)
    fw, fh = layout.fig_width, layout.fig_height
    fig.text(0.3 / fw, 1 - 0.3 / fh, title, fontsize=12, fontweight="bold", va="center")
    for i, line in enumerate(layout.text_lines):
        fig.text(0.3 / fw, 1 - (0.62 + 0.2 * i) / fh, line, fontsize=9, va="center")
    top = 0.5 + 0.2 * len(layout.text_lines) + 0.25
    w_in, h_in = layout.width_cells * layout.cell, layout.height_cells * layout.cell
    if layout.blocks:
        ax = fig.add_axes([0.4 / fw, 1 - (top + h_in) / fh, w_in / fw, h_in / fh])
        ax.set_xlim(0, layout.width_cells)
        ax.set_ylim(layout.height_cells, 0)
        ax.axis("off")
        cell_pt = layout.cell * 72
        for block, (x, y) in zip(layout.blocks, layout.positions):
            _draw_block(ax, block, x, y, cell_pt)
        if extra:
            extra(ax)
    handles = legend if legend is not None else _legend(layout.blocks)
    if handles:
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.3 / fw, 0.1 / fh),
                   ncol=2, frameon=False, fontsize=8.5, handlelength=1.6,
                   handleheight=1.2, columnspacing=2.0)
    return fig


# -- the steps of an explanation ------------------------------------------------------------------

#: Slices ``[n, c]`` drawn per panel at most (the text and --json show all).
MAX_SLICES = 4


def _kept(cropped) -> tuple[slice, ...] | None:
    """The bounding box of the cells not cropped: x inside the padded canvas."""
    if cropped is None or not cropped.any():
        return None
    keep = np.nonzero(~np.asarray(cropped))
    return tuple(slice(int(k.min()), int(k.max()) + 1) for k in keep)


def _panel_blocks(panel: Panel) -> list[_Block]:
    """One block per drawn 2-d slice of a panel, the first :data:`MAX_SLICES` in C order."""
    if panel.lead == 0:
        return [_Block(panel.values, panel.name, panel.kinds, panel.cropped,
                       region=_kept(panel.cropped))]
    lead = panel.values.shape[:2]
    slices = list(np.ndindex(*lead))
    blocks = []
    for idx in slices[:MAX_SLICES]:
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        name = panel.name if lead == (1, 1) else f"{panel.name} [{idx[0]}, {idx[1]}]"
        if len(slices) > MAX_SLICES and idx == slices[0]:
            name += f" (first {MAX_SLICES} of {len(slices)})"
        blocks.append(_Block(panel.values[idx], name, pick(panel.kinds), pick(panel.cropped),
                             region=_kept(pick(panel.cropped))))
    return blocks


def check_dims(ndim: int) -> None:
    if ndim > 2:
        raise PlotUnavailable(f"figures draw 1-d and 2-d convolutions; this spec has {ndim} "
                              f"spatial dims (the text output shows every dim)")


def step_figures(explanation: Explanation) -> list:
    """One matplotlib Figure per step of ``explanation`` (1-d and 2-d specs)."""
    check_dims(explanation.spec.ndim)
    figures = []
    for number, step in enumerate(explanation.steps, 1):
        blocks = [b for p in step.panels for b in _panel_blocks(p)]
        layout = _layout(blocks, step.text)
        figures.append(_render(layout, f"{number}. {step.title}"))
    return figures


def save_steps(explanation: Explanation, directory) -> list[Path]:
    """Write ``NN-key.png`` for every step into ``directory`` (created if missing; its parent
    must exist: tconv makes no directory it was not asked for)."""
    directory = Path(directory)
    figures = step_figures(explanation)
    directory.mkdir(exist_ok=True)
    paths = []
    for number, (step, fig) in enumerate(zip(explanation.steps, figures), 1):
        path = directory / f"{number:02d}-{step.key}.png"
        fig.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


# -- the animation --------------------------------------------------------------------------------

def _scatter_blocks(anim, frame) -> list[_Block]:
    one = anim.spec
    g_mark = np.zeros(anim.g.shape, dtype=bool)
    if frame is not None:
        g_mark[frame.cell] = True
    canvas = frame.canvas if frame is not None else np.zeros(anim.scatter_cropped.shape)
    stamp = frame.stamp if frame is not None else np.zeros(anim.w.shape)
    value = _fmt(anim.g[frame.cell]) if frame is not None else "g[i]"
    return [
        _Block(anim.g, "g = dL/do", outline=g_mark),
        _Block(anim.w, "w"),
        _Block(stamp, f"this copy: {value}\u00b7w", outline=np.ones(stamp.shape, dtype=bool)),
        _Block(canvas, "copies added up on the padded input",
               kinds=np.where(anim.scatter_extra, "output_padding", "data"),
               cropped=anim.scatter_cropped,
               outline=frame.window if frame is not None else None,
               region=one.input_window),
    ]


def _sliding_blocks(anim, frame) -> list[_Block]:
    result = frame.result if frame is not None else np.full(anim.result.shape, np.nan)
    x_mark = np.zeros(anim.result.shape, dtype=bool)
    if frame is not None:
        x_mark[frame.cell] = True
    return [
        _Block(anim.sliding_canvas, "g: zeros inserted, padded", kinds=anim.sliding_kinds,
               outline=frame.window if frame is not None else None),
        _Block(anim.flipped, "w flipped"),
        _Block(result, "dL/dx", outline=x_mark),
    ]


def _intro_blocks(anim, frame) -> list[_Block]:
    """The arrays a title frame shows: the view's inputs, or both results side by side."""
    if frame.about == "scatter":
        return [_Block(anim.g, "g = dL/do"), _Block(anim.w, "w")]
    if frame.about == "sliding":
        return [_Block(anim.sliding_canvas, "g: zeros inserted, padded",
                       kinds=anim.sliding_kinds), _Block(anim.flipped, "w flipped")]
    last = anim.view("scatter")[-1]
    return [_Block(last.canvas, "scatter: the copies, cropped to x",
                   kinds=np.where(anim.scatter_extra, "output_padding", "data"),
                   cropped=anim.scatter_cropped, region=anim.spec.input_window),
            _Block(anim.result, "zero insertion: dL/dx")]


def _frame_blocks(anim, frame) -> list[_Block]:
    if frame.view == "title":
        return _intro_blocks(anim, frame)
    return (_scatter_blocks if frame.view == "scatter" else _sliding_blocks)(anim, frame)


_HEADINGS = {"scatter": "Scatter view: each g cell stamps a copy of the kernel",
             "sliding": "Zero-insertion view: the flipped kernel slides over g"}


def _frame_text(frame) -> tuple[str, str]:
    """(heading, paragraph) of a frame."""
    if frame.view == "title":
        heading, _, text = frame.caption.partition("\n")
        return heading, text
    return _HEADINGS[frame.view], frame.caption


def animation_frames(anim) -> list:
    """One matplotlib Figure per frame of ``anim`` (a :class:`tconv.animation.Animation`).

    Every frame has the same size in pixels (the largest of the layouts); each view has its
    own legend.
    """
    require()
    layouts = []
    for frame in anim.frames:
        blocks = _frame_blocks(anim, frame)
        heading, text = _frame_text(frame)
        layouts.append((_layout(blocks, text, min_width=9.0, text_lines=3, dpi=GIF_DPI),
                        heading))
    size = frame_size(lay for lay, _ in layouts)
    figures = []
    for frame, (lay, heading) in zip(anim.frames, layouts):
        _, text = _frame_text(frame)
        fixed = _layout(lay.blocks, text, text_lines=3, size=size, dpi=GIF_DPI)
        figures.append(_render(fixed, heading))
    return figures


def frame_size(layouts) -> tuple[float, float]:
    """Inches of every GIF frame: the largest width and height of the frames' layouts."""
    layouts = list(layouts)
    return (max(lay.fig_width for lay in layouts), max(lay.fig_height for lay in layouts))


#: Milliseconds each kind of frame stays.
DURATIONS = {"title": 4000, "scatter": 1200, "sliding": 700}


#: Palette colours of the GIF (shared by all frames).
GIF_COLOURS = 32


def animation_images(anim) -> list:
    """The frames of ``anim`` as RGB pillow images, all of the same size."""
    from PIL import Image

    images = []
    for fig in animation_frames(anim):
        fig.canvas.draw()
        images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()))
    return images


def _gif_frames(images) -> list:
    """Palette frames on one shared palette, so that pillow's optimizer can store each frame as
    the pixels that changed (the rest transparent)."""
    from PIL import Image

    mosaic = Image.new("RGB", (images[0].width, images[0].height * len(images)))
    for i, im in enumerate(images):
        mosaic.paste(im, (0, i * im.height))
    palette = mosaic.quantize(colors=GIF_COLOURS, method=Image.Quantize.MEDIANCUT)
    colours = palette.getpalette()[:3 * GIF_COLOURS]
    for i in range(0, len(colours), 3):
        if min(colours[i:i + 3]) >= 248:        # the median cut greys the white background
            colours[i:i + 3] = [255, 255, 255]
    palette.putpalette(colours)
    return [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]


def save_animation(anim, path) -> Path:
    """Write ``anim`` as a looping GIF to ``path``."""
    require()
    frames = _gif_frames(animation_images(anim))
    path = Path(path)
    frames[0].save(path, save_all=True, append_images=frames[1:], loop=0, optimize=True,
                   duration=[DURATIONS[f.view] for f in anim.frames])
    return path


# -- overlap and matrix ---------------------------------------------------------------------------

def _shades(values: np.ndarray, cmap: str = "Blues"):
    """Light colours of a sequential map (black numbers stay readable) and a legend per value."""
    import matplotlib
    from matplotlib.patches import Patch

    cm = matplotlib.colormaps[cmap]
    top = max(int(values.max()), 1)
    colour = lambda v: matplotlib.colors.to_hex(cm(0.08 + 0.55 * v / top))  # noqa: E731
    faces = np.vectorize(colour, otypes=[object])(values)
    legend = [Patch(facecolor=colour(v), edgecolor="#9a9a9a",
                    label=f"{v} tap{'s' if v != 1 else ''}") for v in np.unique(values)]
    return faces, legend


def overlap_figure(ov: Overlap):
    require()
    faces, legend = _shades(ov.counts)
    title = (f"Overlap: kernel taps per output cell (kernel "
             f"{_joined(ov.kernel)}, stride {_joined(ov.stride)}, dilation {_joined(ov.dilation)})")
    block = _Block(ov.counts, f"taps per output cell, input {'x'.join(map(str, ov.size))} "
                              f"of ones",
                   colours=faces)
    layout = _layout([block], overlap_summary(ov), legend=legend)
    return _render(layout, title, legend=legend)


def save_overlap(ov: Overlap, path) -> Path:
    """Write the overlap map of ``ov`` as a PNG."""
    check_dims(len(ov.kernel))
    path = Path(path)
    overlap_figure(ov).savefig(path, dpi=DPI)
    return path


def _joined(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _cell_names(prefix: str, channels: int, size) -> list[str]:
    """``x0,1`` (or ``x2,0,1`` with channel 2) for every flat position of an array."""
    names = []
    for c in range(channels):
        for pos in np.ndindex(*size):
            where = ",".join(map(str, pos))
            names.append(f"{prefix}{c},{where}" if channels > 1 else f"{prefix}{where}")
    return names


def _tap_colour(tap: int) -> str:
    """Colour of kernel tap ``tap`` (1-based); 0, no tap, is the colour of an empty cell."""
    return KIND_COLOURS["empty"] if tap == 0 else TAP_COLOURS[(tap - 1) % len(TAP_COLOURS)]


#: Largest C (rows or columns) drawn with a name for each row and column.
LABELLED_MATRIX = 64


def matrix_figure(view: MatrixView):
    """C and C^T side by side, each stored entry coloured by its kernel tap, with the taps."""
    require()
    from matplotlib.patches import Patch

    spec = view.spec
    colour = np.vectorize(_tap_colour, otypes=[object])
    faces = colour(view.taps)
    texts = np.where(view.taps > 0, np.vectorize(_fmt, otypes=[object])(view.c), "")
    rows = _cell_names("o", spec.out_channels, spec.output_size)
    cols = _cell_names("x", spec.in_channels, spec.input_size)
    named = max(view.c.shape) <= LABELLED_MATRIX
    kernel_ids = np.arange(1, math.prod(spec.kernel_size) + 1).reshape(spec.kernel_size)
    blocks = [
        _Block(view.c, f"C {view.c.shape}: o = C x", colours=faces, texts=texts,
               row_labels=rows if named else None, col_labels=cols if named else None),
        _Block(view.c.T, f"C^T {view.c.T.shape}: dL/dx = C^T g", colours=faces.T,
               texts=texts.T,
               row_labels=[c.replace("x", "dx", 1) for c in cols] if named else None,
               col_labels=[r.replace("o", "g", 1) for r in rows] if named else None),
        _Block(kernel_ids, "kernel taps (colours)", colours=colour(kernel_ids),
               texts=np.vectorize(lambda t: f"w{t - 1}", otypes=[object])(kernel_ids)),
    ]
    dot = view.dot
    text = (f"{spec.describe()}. Row r of C holds the kernel taps that output cell r reads, "
            f"column q the taps that read input cell q: {view.nnz} of {view.c.size} entries are "
            f"stored ({view.nnz / view.c.size:.0%}); every other entry is 0 (no tap connects "
            f"the two cells, or the tap falls into the padding). The backward pass is C^T. "
            f"Dot-product test <C x, y> = <x, C^T y>: {dot.lhs:g} = {dot.rhs:g}, "
            f"{'passed' if dot.passed else 'FAILED'}.")
    legend = [Patch(facecolor=KIND_COLOURS["empty"], edgecolor="#9a9a9a",
                    label=kind_label("empty")),
              Patch(facecolor=TAP_COLOURS[0], edgecolor="#9a9a9a",
                    label="a stored entry: one kernel tap (colour), its value")]
    layout = _layout(blocks, text, legend=legend)
    return _render(layout, "The forward convolution as a matrix C, the backward pass as C^T",
                   legend=legend)


def save_matrix(view: MatrixView, path) -> Path:
    """Write the pictures of C and C^T as a PNG."""
    path = Path(path)
    matrix_figure(view).savefig(path, dpi=DPI)
    return path
