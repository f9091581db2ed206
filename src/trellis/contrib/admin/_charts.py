"""Charts as inline SVG, drawn on the server: no script, no CDN, nothing for the CSP to allow.

Colours and line widths come from classes (``admin.css``), never from ``style`` attributes.
Each chart is an image with a title for screen readers; the page also gives the numbers in a
table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH = 400
HEIGHT = 170
_LEFT = 58
_RIGHT = 12
_TOP = 12
_BOTTOM = 26


@dataclass(frozen=True, slots=True)
class Series:
    """One line (or the bars) of a chart: a name, values per point, a CSS class."""

    name: str
    values: Sequence[float | None]
    css_class: str


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least ``value``."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value * (1 - 1e-9):
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover - 10 x 10^e always fits


def format_number(value: float, unit: str = "") -> str:
    """``1200`` -> ``1.2k``; ``0.0123`` with unit ``s`` -> ``12 ms``."""
    if unit == "s":
        if value == 0:
            return "0"
        if value < 1:
            return f"{value * 1000:.3g} ms"
        return f"{value:.3g} s"
    if value >= 1000:
        return f"{value / 1000:.3g}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.2g}"


def clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M")


def chart(
    title: str,
    times: Sequence[float],
    series: Sequence[Series],
    *,
    kind: str = "line",
    unit: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """An SVG chart of ``series`` over ``times`` (seconds since the epoch, one per point).

    Args:
        title: What the chart shows (the image's accessible name).
        times: The time of each point.
        series: The lines (``kind="line"``) or the one series of bars (``kind="bar"``).
        kind: ``"line"`` or ``"bar"``.
        unit: ``"s"`` for durations (labels in ms/s), ``""`` for counts.
        width: The drawing's width (it scales to the page with CSS).
        height: Its height.
    """
    points = len(times)
    plot_w = width - _LEFT - _RIGHT
    plot_h = height - _TOP - _BOTTOM
    peak = max((v for s in series for v in s.values if v is not None), default=0.0)
    top = nice_ceiling(peak) if peak > 0 else 1.0
    step = plot_w / max(points - 1, 1) if kind == "line" else plot_w / max(points, 1)

    def x(index: int) -> float:
        if kind == "bar":
            return _LEFT + index * step
        return _LEFT + index * step

    def y(value: float) -> float:
        return _TOP + plot_h - (value / top) * plot_h

    parts: list[str] = [
        f'<svg class="chart chart-{escape(kind)}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        gy = y(top * fraction)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" y1="{gy:.1f}" x2="{width - _RIGHT}" y2="{gy:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"{escape(format_number(top * fraction, unit))}</text>"
        )
    if points:
        for index in sorted({0, points // 2, points - 1}):
            anchor = "start" if index == 0 else "end" if index == points - 1 else "middle"
            tx = x(index) + (step / 2 if kind == "bar" else 0)
            parts.append(
                f'<text class="axis" x="{tx:.1f}" y="{height - 8}" text-anchor="{anchor}">'
                f"{clock(times[index])}</text>"
            )
    if kind == "bar":
        for s in series[:1]:
            for index, value in enumerate(s.values):
                if not value:
                    continue
                bar_top = y(value)
                parts.append(
                    f'<rect class="{escape(s.css_class)}" x="{x(index) + step * 0.1:.1f}"'
                    f' y="{bar_top:.1f}" width="{max(step * 0.8, 1):.1f}"'
                    f' height="{_TOP + plot_h - bar_top:.1f}"><title>'
                    f"{clock(times[index])}: {escape(format_number(value, unit))}"
                    "</title></rect>"
                )
    else:
        for s in series:
            segment: list[str] = []
            segments: list[list[str]] = []
            for index, value in enumerate(s.values):
                if value is None:
                    if segment:
                        segments.append(segment)
                        segment = []
                    continue
                segment.append(f"{x(index):.1f},{y(value):.1f}")
            if segment:
                segments.append(segment)
            for seg in segments:
                if len(seg) == 1:
                    cx, cy = seg[0].split(",")
                    parts.append(
                        f'<circle class="{escape(s.css_class)}" cx="{cx}" cy="{cy}" r="2"/>'
                    )
                else:
                    parts.append(
                        f'<polyline class="{escape(s.css_class)}" points="{" ".join(seg)}"/>'
                    )
    parts.append(
        f'<line class="baseline" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{width - _RIGHT}"'
        f' y2="{_TOP + plot_h}"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
