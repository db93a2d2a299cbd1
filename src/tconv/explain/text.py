"""The explanation in the terminal: arrays as coloured grids, a step per rule, heat maps.

Renders the data of :mod:`.story` with rich (the figures are :mod:`.drawing`, the page
:mod:`.html`); nothing here computes a convolution.
"""
from __future__ import annotations

import numpy as np
from rich.columns import Columns
from rich.console import Console, Group
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from . import story

# -- arrays in the terminal -----------------------------------------------------------------------

STYLES = {"data": "bold", "inserted": "yellow", "padding": "bright_black",
          "output_padding": "bold dark_orange", "unread": "bold magenta", "empty": "bright_black"}
PHASE_STYLES = ["bold cyan", "bold green", "bold yellow", "bold magenta", "bold blue", "bold red"]
CROPPED_STYLE = "bright_black strike"
#: Largest slice printed as a grid; wider ones are printed by NumPy.
MAX_GRID_COLUMNS = 32


def _style(kind: str) -> str:
    if kind.startswith("phase"):
        return PHASE_STYLES[int(kind[5:]) % len(PHASE_STYLES)]
    return STYLES.get(kind, "")


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.2f}"
    return str(v)


def grid(values, kinds=None, cropped=None):
    """One 1-d or 2-d slice as a borderless grid of styled numbers."""
    a = np.asarray(values)
    if a.ndim > 2 or (a.ndim == 2 and a.shape[1] > MAX_GRID_COLUMNS) or a.size > 1024:
        return Text(np.array2string(a, precision=2, suppress_small=True, threshold=1000))
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    k2 = None if kinds is None else np.asarray(kinds).reshape(a2.shape)
    c2 = None if cropped is None else np.asarray(cropped).reshape(a2.shape)
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    for _ in range(a2.shape[1]):
        table.add_column(justify="right")
    for r in range(a2.shape[0]):
        cells = []
        for c in range(a2.shape[1]):
            style = _style(str(k2[r, c])) if k2 is not None else ""
            if c2 is not None and c2[r, c]:
                style = CROPPED_STYLE
            cells.append(Text(_cell(a2[r, c]), style=style))
        table.add_row(*cells)
    return table


#: Slices of (N, C) printed per panel at most.
MAX_SLICES = 4


def _panel(panel: story.Panel):
    """A panel: its name and shape, then its slices."""
    head = Text(f"{panel.name} {tuple(panel.values.shape)}", style="underline")
    if panel.lead == 0:
        return Group(head, grid(panel.values, panel.kinds, panel.cropped))
    parts = [head]
    lead = panel.values.shape[:2]
    for count, idx in enumerate(np.ndindex(*lead)):
        if count == MAX_SLICES:
            parts.append(Text(f"... {int(np.prod(lead)) - MAX_SLICES} more slices (--json)",
                              style="italic"))
            break
        if lead != (1, 1):
            parts.append(Text(f"[{idx[0]}, {idx[1]}]", style="italic"))
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        parts.append(grid(panel.values[idx], pick(panel.kinds), pick(panel.cropped)))
    return Group(*parts)


def _legend(panels) -> Text | None:
    kinds = set()
    for p in panels:
        if p.kinds is not None:
            kinds |= set(np.unique(p.kinds))
    cropped = any(p.cropped is not None and p.cropped.any() for p in panels)
    if kinds <= {"data"} and not cropped:
        return None
    text = Text("legend: ", style="italic")
    for kind in sorted(kinds, key=lambda k: (k.startswith("phase"), k)):
        text.append("■ " + story.kind_label(kind), style=_style(kind))
        text.append("   ")
    if cropped:
        text.append("crossed out", style=CROPPED_STYLE)
        text.append(" = forward padding, cropped")
    return text


def print_explanation(console: Console, explanation: story.Explanation) -> None:
    """Every step: a rule with the title, the reasoning, the arrays side by side, a legend."""
    console.print(f"[bold]tconv explain[/bold]: {explanation.spec.describe()}", highlight=False)
    for number, step in enumerate(explanation.steps, 1):
        console.print(Rule(Text(f"{number}. {step.title}", style="bold"), align="left"))
        console.print(step.text, markup=False, highlight=False)
        if step.panels:
            console.print(Columns([_panel(p) for p in step.panels], padding=(1, 4)))
            legend = _legend(step.panels)
            if legend is not None:
                console.print(legend)


BLUES = ["#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5"]


def heat(counts: np.ndarray) -> Table | Text:
    """A text heatmap: each count on a blue background, darker for more taps (too wide to
    colour: NumPy's summary of the counts)."""
    a = counts.reshape(1, -1) if counts.ndim == 1 else counts
    if a.shape[1] > MAX_GRID_COLUMNS * 2 or a.size > 4096:
        return Text(np.array2string(counts, threshold=200, edgeitems=8, max_line_width=80))
    top = max(int(a.max()), 1)
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    for _ in range(a.shape[1]):
        table.add_column(justify="right")
    for row in a:
        table.add_row(*[Text(f"{v}", style=f"black on {BLUES[round(v / top * (len(BLUES) - 1))]}")
                        for v in row])
    return table
