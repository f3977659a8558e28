"""Small SVG charts for the demo report: bars over time, bands, histograms, horizontal bars.

Each chart is one ``<svg class="chart">`` string with a fixed viewBox, drawn
from numbers only (no script, no network), so the report page stays
self-contained. Every drawn data element has the class ``mark``: the report's
own check (and the test that renders the page in Chromium) counts them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Band", "Series", "band_chart", "hbar_chart", "histogram", "stacked_bars"]

W, H = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 30


@dataclass(frozen=True)
class Series:
    """One stacked layer (or one histogram series): a label, a colour, a value per bucket."""

    label: str
    color: str
    values: Sequence[float]


@dataclass(frozen=True)
class Band:
    """A span of time drawn as one coloured segment of a band chart."""

    start: float
    end: float
    label: str
    color: str


def _open(name: str, title: str, height: int = H) -> list[str]:
    return [
        f'<svg class="chart" data-chart="{escape(name)}" viewBox="0 0 {W} {height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)  # pragma: no cover - the loop always returns


def _y_axis(top: float, unit: str, plot_h: float) -> list[str]:
    out = []
    for k in range(5):
        value = top * k / 4
        y = TOP + plot_h - plot_h * k / 4
        text = f"{value:g}{unit}"
        out.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>'
        )
    return out


def _time_axis(duration: float, plot_w: float, y: float) -> list[str]:
    out = []
    step = max(1.0, _nice_max(duration / 6))
    t = 0.0
    while t <= duration + 1e-9:
        x = LEFT + plot_w * t / duration
        out.append(f'<text class="tick" x="{x:.1f}" y="{y}" text-anchor="middle">{t:g} s</text>')
        t += step
    return out


def _shading(phases: Sequence[tuple[float, str]], duration: float, plot_w: float) -> list[str]:
    out = []
    for i, (start, label) in enumerate(phases):
        end = phases[i + 1][0] if i + 1 < len(phases) else duration
        x0, x1 = LEFT + plot_w * start / duration, LEFT + plot_w * end / duration
        if i % 2:
            out.append(
                f'<rect class="phase" x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" '
                f'height="{H - TOP - BOTTOM}"/>'
            )
        if len(phases) > 1:
            out.append(
                f'<text class="phase-label" x="{x0 + 4:.1f}" y="{TOP + 10}">{escape(label)}</text>'
            )
    return out


def stacked_bars(
    name: str,
    title: str,
    layers: Sequence[Series],
    duration: float,
    phases: Sequence[tuple[float, str]] = (),
) -> str:
    """Bars over time (one per bucket, ``duration`` split evenly), layers stacked bottom-up."""
    buckets = max((len(s.values) for s in layers), default=0)
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    totals = [sum(s.values[i] for s in layers if i < len(s.values)) for i in range(buckets)]
    top = _nice_max(max(totals, default=0.0))
    out = _open(name, title)
    out += _shading(phases, duration, plot_w)
    out += _y_axis(top, "", plot_h)
    bw = plot_w / max(buckets, 1)
    for i in range(buckets):
        base = 0.0
        for layer in layers:
            v = layer.values[i] if i < len(layer.values) else 0.0
            if v <= 0:
                continue
            h = plot_h * v / top
            y = TOP + plot_h - plot_h * base / top - h
            out.append(
                f'<rect class="mark" x="{LEFT + i * bw + 0.5:.1f}" y="{y:.1f}" '
                f'width="{max(bw - 1, 0.5):.1f}" height="{h:.1f}" fill="{layer.color}">'
                f"<title>{escape(layer.label)}: {v:g}</title></rect>"
            )
            base += v
    if not any(totals):  # nothing happened: a zero line says so (and is drawn)
        out.append(
            f'<rect class="mark" x="{LEFT}" y="{TOP + plot_h - 1.5:.1f}" width="{plot_w}" '
            f'height="1.5" fill="{layers[0].color if layers else "#999"}">'
            "<title>none</title></rect>"
        )
    out += _time_axis(duration, plot_w, H - 10)
    out.append("</svg>")
    return "\n".join(out)


def band_chart(
    name: str, title: str, rows: Sequence[tuple[str, Sequence[Band]]], duration: float
) -> str:
    """One horizontal band per row (e.g. a breaker's states over time)."""
    row_h, gap = 34, 10
    height = TOP + len(rows) * (row_h + gap) + BOTTOM
    plot_w = W - LEFT - RIGHT - 52
    left = LEFT + 52
    out = _open(name, title, height)
    for r, (label, bands) in enumerate(rows):
        y = TOP + r * (row_h + gap)
        out.append(
            f'<text class="row-label" x="{left - 8}" y="{y + row_h / 2 + 4}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        for band in bands:
            x0 = left + plot_w * max(0.0, band.start) / duration
            x1 = left + plot_w * min(duration, band.end) / duration
            out.append(
                f'<rect class="mark" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.0):.1f}" '
                f'height="{row_h}" fill="{band.color}"><title>{escape(band.label)}: '
                f"{band.start:.2f}–{band.end:.2f} s</title></rect>"
            )
    step = max(1.0, _nice_max(duration / 6))
    t = 0.0
    while t <= duration + 1e-9:
        x = left + plot_w * t / duration
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{height - 10}" text-anchor="middle">{t:g} s</text>'
        )
        t += step
    out.append("</svg>")
    return "\n".join(out)


def histogram(
    name: str,
    title: str,
    series: Sequence[tuple[Series, dict[str, float]]],
    edges: Sequence[float],
) -> str:
    """Counts per bucket (``edges`` in seconds, log-spaced), one outline per series.

    Each series comes with its markers (e.g. ``{"p50": 0.004, "p99": 0.5}``),
    drawn as dashed vertical lines in the series' colour.
    """
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    lo, hi = math.log10(edges[0]), math.log10(edges[-1])

    def x_of(seconds: float) -> float:
        s = min(max(seconds, edges[0]), edges[-1])
        return LEFT + plot_w * (math.log10(s) - lo) / (hi - lo)

    top = _nice_max(max((max(s.values, default=0.0) for s, _ in series), default=0.0))
    out = _open(name, title)
    out += _y_axis(top, "", plot_h)
    for n, (s, markers) in enumerate(series):
        points = []
        for i, v in enumerate(s.values):
            x0, x1 = x_of(edges[i]), x_of(edges[i + 1])
            y = TOP + plot_h - plot_h * v / top
            points += [f"{x0:.1f},{y:.1f}", f"{x1:.1f},{y:.1f}"]
        base = TOP + plot_h
        path = (
            f"M{x_of(edges[0]):.1f},{base} L"
            + " L".join(points)
            + f" L{x_of(edges[-1]):.1f},{base}"
        )
        out.append(
            f'<path class="mark" d="{path}" fill="{s.color}" fill-opacity="0.25" '
            f'stroke="{s.color}" stroke-width="1.5"><title>{escape(s.label)}</title></path>'
        )
        for k, (label, at) in enumerate(markers.items()):
            x = x_of(at)
            out.append(
                f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{base}" '
                f'stroke="{s.color}" stroke-dasharray="4 3"/>'
            )
            out.append(
                f'<text class="marker-label" x="{x + 3:.1f}" '
                f'y="{TOP + 10 + 11 * (k + 2 * n)}" fill="{s.color}">'
                f"{escape(label)} {at * 1000:.0f} ms</text>"
            )
    for edge in edges:
        if math.log10(edge).is_integer():
            label = f"{edge * 1000:g} ms" if edge < 1 else f"{edge:g} s"
            out.append(
                f'<text class="tick" x="{x_of(edge):.1f}" y="{H - 10}" '
                f'text-anchor="middle">{label}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def hbar_chart(name: str, title: str, bars: Sequence[tuple[str, float, str, str]]) -> str:
    """Horizontal bars: (label, value, colour, the text shown after the bar)."""
    row_h, gap = 30, 12
    height = TOP + len(bars) * (row_h + gap) + 10
    left = LEFT + 92
    plot_w = W - left - RIGHT - 120
    top = _nice_max(max((v for _, v, _, _ in bars), default=0.0))
    out = _open(name, title, height)
    for r, (label, value, color, text) in enumerate(bars):
        y = TOP + r * (row_h + gap)
        w = plot_w * value / top
        out.append(
            f'<text class="row-label" x="{left - 8}" y="{y + row_h / 2 + 4}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        out.append(
            f'<rect class="mark" x="{left}" y="{y}" width="{max(w, 1.0):.1f}" height="{row_h}" '
            f'fill="{color}"><title>{escape(label)}: {value:g}</title></rect>'
        )
        out.append(
            f'<text class="value" x="{left + max(w, 1.0) + 6:.1f}" '
            f'y="{y + row_h / 2 + 4}">{escape(text)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
