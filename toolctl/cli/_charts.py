"""Terminal charts drawn with Unicode block characters (rendered by Rich, exported to SVG).

Why not plotext or another chart library: the charts here are a handful of bars and one
line per series, they must sit inside Rich tables and Live frames, be recorded by
``Console(record=True)`` for the README images, and degrade to plain ASCII when stdout is
not a terminal. Eighth-block characters do all of that with no extra dependency.

Every function returns strings (or Rich Text); none prints.
"""

from __future__ import annotations

import math
from typing import Sequence

EIGHTHS = " ▁▂▃▄▅▆▇█"  # vertical fill of one cell, 0/8 … 8/8
HBAR = " ▏▎▍▌▋▊▉█"  # horizontal fill of one cell, 0/8 … 8/8


def hbar(value: float, top: float, width: int, *, ascii_only: bool = False) -> str:
    """A horizontal bar of ``value/top`` of ``width`` cells (eighth-cell steps, or '#')."""
    if top <= 0 or value <= 0:
        return ""
    frac = min(1.0, value / top) * width
    if ascii_only:
        return "#" * max(1, round(frac))
    full, rest = int(frac), int((frac - int(frac)) * 8)
    bar = "█" * full + (HBAR[rest] if rest else "")
    return bar or HBAR[1]


def column_chart(values: Sequence[float | None], *, height: int, label: str,
                 fmt: callable = str, x_first: str = "", x_last: str = "") -> list[str]:
    """A column chart: one column per value, ``height`` rows, y axis labelled with the top
    value and 0, x axis with the first and last labels (those that fit under the columns:
    see ``_x_axis_labels``). Returns the lines."""
    present = [v for v in values if v is not None]
    top = max(present, default=0.0)
    ylab_top, ylab_zero = fmt(top), fmt(0.0)
    pad = max(len(ylab_top), len(ylab_zero))
    lines = [label]
    for row in range(height, 0, -1):
        cells = []
        for v in values:
            if v is None or top <= 0:
                cells.append(" ")
                continue
            eighths = v / top * height * 8  # the column's height in eighths of a cell
            fill = eighths - (row - 1) * 8
            cells.append(EIGHTHS[max(0, min(8, math.ceil(fill) if 0 < fill < 1 else int(fill)))])
        y = ylab_top if row == height else (ylab_zero if row == 1 else "")
        lines.append(f"{y:>{pad}} ┤{''.join(cells)}")
    width = len(values)
    lines.append(" " * pad + " └" + "─" * width)
    labels = _x_axis_labels(x_first, x_last, width)
    if labels:
        lines.append(" " * (pad + 2) + labels)
    return lines


def _x_axis_labels(first: str, last: str, width: int) -> str:
    """``first`` under the first column and ``last`` ending under the last, within ``width``
    columns. A label that does not fit is dropped (``last`` before ``first``): with fewer
    columns than label characters the line would run past the chart and wrap on a narrow
    terminal. Returns "" when neither fits."""
    gap = 1 if first and last else 0
    if len(first) + gap + len(last) <= width:
        return first + " " * (width - len(first) - len(last)) + last
    return first if len(first) <= width else ""
