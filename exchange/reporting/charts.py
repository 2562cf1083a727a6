"""Server-rendered SVG charts: line and horizontal bar charts as inline SVG, no JavaScript.

The geometry (scales, ticks, paths) is computed here; ``templates/reporting/charts/*.svg``
draws it with SVG presentation attributes only (the CSP forbids ``style=`` attributes and
inline ``<style>``). :func:`responsive` renders a wide and a narrow variant and lets Bootstrap's
display classes show one: fonts stay readable on a 390 px phone without scaling a wide chart
down. Every chart has a ``<title>`` and ``<desc>`` for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count

from flask import render_template
from markupsafe import Markup

PALETTE = ("#8e2b1c", "#1f6f8b", "#d08a1e", "#4c956c", "#6c4f9e", "#6c757d", "#c05a8a")
TARGET_COLORS = ("#b02a37", "#198754", "#0d6efd")
_ids = count(1)


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Reference:
    """A horizontal target line, e.g. the 15 % target."""

    label: str
    value: float


@dataclass(frozen=True)
class Size:
    width: int
    height: int
    font: int
    #: Show every n-th x label (None: as many as fit).
    label_every: int | None = None


WIDE = Size(720, 320, 13)
#: For a chart in half of a laptop-wide page (two columns).
HALF = Size(520, 300, 12)
NARROW = Size(360, 280, 12)


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering [low, high] with steps of 1, 2 or 5 × 10^k."""
    if high <= low:
        high = low + 1
    raw = (high - low) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def fmt_number(value: float, suffix: str = "") -> str:
    """Compact tick labels: 1.2M, 350k, 12.5, with an optional unit suffix."""
    magnitude = abs(value)
    if magnitude >= 1_000_000:
        text = f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    elif magnitude >= 10_000:
        text = f"{value / 1000:.0f}k"
    elif magnitude >= 100 or value == int(value):
        text = f"{value:,.0f}"
    else:
        text = f"{value:.1f}"
    return text + suffix


@dataclass
class _Plot:
    size: Size
    left: int
    right: int
    top: int
    bottom: int
    y_ticks: list[float] = field(default_factory=list)

    @property
    def inner_width(self) -> float:
        return self.size.width - self.left - self.right

    @property
    def inner_height(self) -> float:
        return self.size.height - self.top - self.bottom

    def y(self, value: float) -> float:
        low, high = self.y_ticks[0], self.y_ticks[-1]
        return round(self.top + self.inner_height * (1 - (value - low) / (high - low)), 1)


def _line_geometry(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    references: Sequence[Reference],
    y_suffix: str,
    size: Size,
    description: str,
) -> dict[str, object]:
    values = [v for s in series for v in s.values if v is not None]
    values += [r.value for r in references]
    low = min([0.0, *values])
    high = max([*values, 0.0]) or 1.0
    legend_rows = math.ceil((len(series) + len(references)) / (2 if size.width < 600 else 4))
    plot = _Plot(
        size,
        left=8 + size.font * 4,
        right=12,
        top=10 + legend_rows * (size.font + 8),
        bottom=size.font * 2 + 12,
    )
    plot.y_ticks = nice_ticks(low, high, 4 if size.height < 300 else 5)
    n = max(len(x_labels), 1)
    step = plot.inner_width / (n - 1) if n > 1 else 0.0

    def x(i: int) -> float:
        return round(plot.left + (i * step if n > 1 else plot.inner_width / 2), 1)

    fit = max(int(plot.inner_width // (size.font * 5)), 1)
    every = size.label_every or max(math.ceil(n / fit), 1)
    lines = []
    for k, s in enumerate(series):
        segments: list[list[tuple[float, float]]] = []
        current: list[tuple[float, float]] = []
        for i, v in enumerate(s.values):
            if v is None:
                if current:
                    segments.append(current)
                current = []
                continue
            current.append((x(i), plot.y(v)))
        if current:
            segments.append(current)
        lines.append(
            {
                "label": s.label,
                "color": PALETTE[k % len(PALETTE)],
                "paths": [" ".join(f"{px},{py}" for px, py in seg) for seg in segments],
                "points": [
                    (px, py, f"{x_labels[i]}: {fmt_number(v, y_suffix)}")
                    for i, v in enumerate(s.values)
                    if v is not None
                    for px, py in [(x(i), plot.y(v))]
                ],
            }
        )
    legend = [(s["label"], s["color"], False) for s in lines] + [
        (r.label, TARGET_COLORS[k % len(TARGET_COLORS)], True) for k, r in enumerate(references)
    ]
    per_row = 2 if size.width < 600 else 4
    return {
        "id": f"chart{next(_ids)}",
        "title": title,
        "description": description,
        "size": size,
        "plot": plot,
        "y_ticks": [(plot.y(t), fmt_number(t, y_suffix)) for t in plot.y_ticks],
        "x_labels": [(x(i), label) for i, label in enumerate(x_labels) if i % every == 0],
        "lines": lines,
        "references": [
            (plot.y(r.value), r.label, TARGET_COLORS[k % len(TARGET_COLORS)])
            for k, r in enumerate(references)
        ],
        "legend": [
            (
                plot.left + (k % per_row) * (plot.inner_width / per_row),
                8 + (k // per_row) * (size.font + 8),
                label,
                color,
                dashed,
            )
            for k, (label, color, dashed) in enumerate(legend)
        ],
    }


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    references: Sequence[Reference] = (),
    y_suffix: str = "",
    size: Size = WIDE,
    description: str = "",
) -> Markup:
    """A line chart as an inline SVG string (``None`` values break the line)."""
    geometry = _line_geometry(title, x_labels, series, references, y_suffix, size, description)
    return Markup(render_template("reporting/charts/line.svg", chart=geometry))  # noqa: S704


def bar_chart(
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    value_suffix: str = "",
    size: Size = WIDE,
    description: str = "",
) -> Markup:
    """Horizontal bars with their labels above them (long labels fit on a phone)."""
    bar, gap = size.font + 4, size.font + 14
    left, right = 8, size.font * 5
    height = max(len(items), 1) * (bar + gap) + 8
    top_value = max([v for _l, v in items] + [0.0]) or 1.0
    inner = size.width - left - right
    bars = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * (bar + gap)
        bars.append(
            {
                "label": label,
                "label_y": y + size.font,
                "y": y + gap - 4,
                "width": round(max(value, 0.0) / top_value * inner, 1),
                "value": fmt_number(value, value_suffix),
                "color": PALETTE[i % len(PALETTE)],
            }
        )
    geometry = {
        "id": f"chart{next(_ids)}",
        "title": title,
        "description": description,
        "size": Size(size.width, height, size.font),
        "left": left,
        "bar": bar,
        "bars": bars,
    }
    return Markup(render_template("reporting/charts/bar.svg", chart=geometry))  # noqa: S704


def responsive(
    render: Callable[..., Markup], *args: object, wide_size: Size = WIDE, **kwargs: object
) -> Markup:
    """A wide variant for tablets and laptops and a narrow one for phones; CSS shows one."""
    wide = render(*args, size=wide_size, **kwargs)
    narrow = render(*args, size=NARROW, **kwargs)
    return Markup(  # noqa: S704 - both parts are our own rendered templates
        f'<div class="d-none d-md-block">{wide}</div><div class="d-md-none">{narrow}</div>'
    )
