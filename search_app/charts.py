"""Server-rendered SVG bar charts: geometry here, markup in the template, colours in admin.css.

No JavaScript and no chart library: a horizontal bar per row, vertical lines for thresholds, all
positions computed once in Python so the template only places elements (and Jinja escapes every
label). The SVG uses presentation attributes and classes only — no inline style — so it passes a
strict Content-Security-Policy.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LABEL_CHARS = 48


@dataclass(frozen=True)
class Bar:
    label: str  # shortened for the axis
    title: str  # full text, shown as a tooltip
    value: float
    css: str
    y: float
    width: float
    text_y: float


@dataclass(frozen=True)
class Cut:
    label: str
    value: float
    css: str
    x: float
    anchor: str  # the lower cut's label reads leftwards, the others rightwards, so close cuts do not collide


@dataclass(frozen=True)
class Tick:
    label: str
    x: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    plot_x: int  # where bars start (after the labels)
    plot_width: int
    row_height: int
    bar_height: int
    top: int
    bars: list[Bar]
    cuts: list[Cut]
    ticks: list[Tick]


def horizontal_bar_chart(
    rows: Sequence[tuple[str, float, str]],
    cuts: Sequence[tuple[str, float, str]] = (),
    *,
    width: int = 760,
    label_width: int = 330,
    row_height: int = 20,
    max_value: float | None = None,
) -> BarChart:
    """rows: (label, value, css class), drawn top to bottom; cuts: (label, value, css class) lines."""
    top, bottom = 24, 24
    plot_width = width - label_width - 50
    values = [max(0.0, v) for _, v, _ in rows] + [max(0.0, v) for _, v, _ in cuts]
    scale_max = max_value or _nice_max(max(values, default=1.0))
    bar_height = max(4, row_height - 6)

    def x_of(value: float) -> float:
        return round(plot_width * min(max(value, 0.0), scale_max) / scale_max, 2)

    bars = [
        Bar(label=_shorten(label), title=label, value=value, css=css, y=top + i * row_height + 3,
            width=x_of(value), text_y=top + i * row_height + row_height / 2 + 4)
        for i, (label, value, css) in enumerate(rows)
    ]
    ticks = [Tick(label=f"{scale_max * f:.2f}", x=label_width + x_of(scale_max * f)) for f in (0, 0.25, 0.5, 0.75, 1.0)]
    return BarChart(
        width=width, height=top + len(rows) * row_height + bottom, plot_x=label_width, plot_width=plot_width,
        row_height=row_height, bar_height=bar_height, top=top, bars=bars,
        cuts=[Cut(label=label, value=value, css=css, x=label_width + x_of(value), anchor="end" if i == 0 else "start")
              for i, (label, value, css) in enumerate(sorted(cuts, key=lambda c: c[1]))],
        ticks=ticks,
    )


def _nice_max(value: float) -> float:
    """The next step of 0.1 above the largest value, so the axis ends on a round number."""
    steps = int(value * 10) + 1
    return max(steps, 1) / 10.0


def _shorten(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1].rstrip() + "…"
