"""Charts drawn on the server as inline SVG: no JavaScript, no library, nothing downloaded.

A chart scales to the width of its container (it has a viewBox and no fixed size), so it reads
on a 390 px phone and prints. Every label is escaped. Colours are presentation attributes
(``fill``), never ``style``: the pages' Content-Security-Policy refuses inline styles.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Paul Tol's "muted" scheme: told apart by people with any common colour-vision deficiency.
PALETTE = (
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
    "#DDCC77", "#CC6677", "#882255", "#AA4499",
)  # fmt: skip
XMLNS = "http://www.w3.org/2000/svg"
INK = "#5b6474"
GRID = "#d9dee7"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def colour_for(index: int) -> str:
    """The palette's colour for the ``index``-th thing (a stable index keeps its colour)."""
    return PALETTE[index % len(PALETTE)]


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float, ...]
    colour: str

    def __post_init__(self) -> None:
        if not _COLOUR.fullmatch(self.colour):
            raise ValueError(f"a colour is #rrggbb, not {self.colour!r}")
        if any(value < 0 or not math.isfinite(value) for value in self.values):
            raise ValueError("stacked bars need finite values of 0 or more")


@dataclass(frozen=True)
class StackedBars:
    """Bars side by side, one per category, each a stack of the series' values."""

    title: str
    """The chart's accessible name."""
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    empty: str = "Nothing to show"
    """Said across the chart when every value is 0."""
    width: int = 360
    height: int = 200

    def __post_init__(self) -> None:
        if not self.categories:
            raise ValueError("a chart needs at least one category")
        for series in self.series:
            if len(series.values) != len(self.categories):
                raise ValueError(f"{series.label!r} needs one value per category")

    def totals(self) -> list[float]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.categories))]


def nice_scale(largest: float, most_ticks: int = 5) -> tuple[float, float]:
    """The top of the axis and the step between ticks: 1, 2 or 5 times a power of ten, with
    at most ``most_ticks`` steps (counts get whole-number ticks)."""
    if largest <= 0:
        return 1.0, 1.0
    magnitude = 10 ** math.floor(math.log10(largest / most_ticks)) if largest > most_ticks else 1
    for factor in (1, 2, 5, 10):
        step = factor * magnitude
        if math.ceil(largest / step) <= most_ticks:
            return math.ceil(largest / step) * step, step
    raise AssertionError("unreachable: a factor of 10 always fits")  # pragma: no cover


def _text(x: float, y: float, content: str, *, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{_number(x)}" y="{_number(y)}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="{INK}">{escape(content)}</text>'
    )


def stacked_bars(chart: StackedBars) -> Markup:
    """The chart as an ``<svg>`` element."""
    left, right, top, bottom = 30.0, 6.0, 14.0, 24.0
    plot_w, plot_h = chart.width - left - right, chart.height - top - bottom
    totals = chart.totals()
    axis_top, step = nice_scale(max(totals))
    slot = plot_w / len(chart.categories)
    bar_w = slot * 0.7

    def y_of(value: float) -> float:
        return top + plot_h - plot_h * value / axis_top

    parts = [
        f'<svg xmlns="{XMLNS}" viewBox="0 0 {chart.width} {chart.height}" '
        f'role="img" aria-label="{escape(chart.title)}" font-family="{FONT}">',
        f"<title>{escape(chart.title)}</title>",
    ]
    ticks = round(axis_top / step)
    for tick in range(ticks + 1):
        value = tick * step
        y = y_of(value)
        parts.append(
            f'<line x1="{_number(left)}" x2="{_number(left + plot_w)}" y1="{_number(y)}" '
            f'y2="{_number(y)}" stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(_text(left - 4, y + 3.5, _number(value), anchor="end"))

    # Label as many categories as fit, always including the last (the most recent).
    widest = max(len(label) for label in chart.categories) * 6.2 + 6
    every = max(math.ceil(widest / slot), 1)
    last = len(chart.categories) - 1
    for index, category in enumerate(chart.categories):
        x = left + slot * index + (slot - bar_w) / 2
        base = 0.0
        for series in chart.series:
            value = series.values[index]
            if value <= 0:
                continue
            y_top, y_bottom = y_of(base + value), y_of(base)
            parts.append(
                f'<rect x="{_number(x)}" y="{_number(y_top)}" width="{_number(bar_w)}" '
                f'height="{_number(y_bottom - y_top)}" fill="{series.colour}">'
                f"<title>{escape(f'{category}: {series.label} {_number(value)}')}</title></rect>"
            )
            base += value
        centre = x + bar_w / 2
        if totals[index] > 0:
            parts.append(_text(centre, y_of(totals[index]) - 3, _number(totals[index]), size=10))
        if (last - index) % every == 0:
            parts.append(_text(centre, chart.height - bottom + 14, category))
    if not any(totals):
        parts.append(_text(left + plot_w / 2, top + plot_h / 2, chart.empty, size=12))
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(series: Sequence[Series]) -> Markup:
    """What each colour stands for: a list, so it wraps on a narrow screen."""
    items = "".join(
        f'<li><svg xmlns="{XMLNS}" width="12" height="12" viewBox="0 0 12 12" '
        f'aria-hidden="true" focusable="false">'
        f'<rect width="12" height="12" rx="2" fill="{s.colour}"/></svg>'
        f"{escape(s.label)}</li>"
        for s in series
    )
    return Markup(f'<ul class="chart-legend">{items}</ul>')


def share_bar(part: int, whole: int, *, colour: str = "#1e6b3a", width: int = 120) -> Markup:
    """A small bar filled in proportion ``part`` of ``whole``: decoration beside the figures
    it shows, so hidden from screen readers."""
    if not _COLOUR.fullmatch(colour):
        raise ValueError(f"a colour is #rrggbb, not {colour!r}")
    filled = width * min(max(part / whole, 0.0), 1.0) if whole > 0 else 0.0
    return Markup(
        f'<svg xmlns="{XMLNS}" class="share-bar" width="{width}" height="8" '
        f'viewBox="0 0 {width} 8" preserveAspectRatio="none" aria-hidden="true" focusable="false">'
        f'<rect width="{width}" height="8" rx="4" fill="#e8edf4"/>'
        f'<rect width="{_number(filled)}" height="8" rx="4" fill="{colour}"/></svg>'
    )
