"""Server-rendered SVG charts for the dashboard: no JavaScript, nothing fetched at run time.

:func:`volume_chart` draws volume bars per bucket (negative items stacked in red), the mean sentiment
as a line on its own -1..1 axis, and a dashed marker per release or incident, labelled with its version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from aggregation.domain.reports import SeriesPoint

__all__ = ["Marker", "volume_chart"]


@dataclass(frozen=True)
class Marker:
    at: datetime
    label: str
    kind: str  # release | incident


def _nice_max(value: int) -> int:
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000):
        if value <= step * 4:
            return step * 4 if value > step * 2 else max(step * 2, 1)
    return value


def volume_chart(points: Sequence[SeriesPoint], markers: Sequence[Marker], *, width: int = 900,
                 height: int = 260, bucket_label: str = "%b %d") -> str:
    left, right, top, bottom = 44, 44, 16, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    slot = plot_w / n
    top_value = _nice_max(max((p.count for p in points), default=0))
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Volume and sentiment" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):
        y = top + plot_h * i / 4
        value = round(top_value * (4 - i) / 4)
        sentiment = 1 - i / 2
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{value}</text>')
        parts.append(f'<text x="{left + plot_w + 6}" y="{y + 4:.1f}" class="axis sent">{sentiment:+.1f}</text>')
    for i, p in enumerate(points):
        x = left + i * slot + slot * 0.15
        w = max(slot * 0.7, 1)
        h_all = plot_h * p.count / top_value if top_value else 0
        h_neg = plot_h * p.negative / top_value if top_value else 0
        title = f"{p.start:%Y-%m-%d %H:%M} — {p.count} items, {p.negative} negative"
        parts.append(f'<g><title>{escape(title)}</title>'
                     f'<rect x="{x:.1f}" y="{top + plot_h - h_all:.1f}" width="{w:.1f}" height="{h_all:.1f}" '
                     f'class="bar" rx="2"/>'
                     f'<rect x="{x:.1f}" y="{top + plot_h - h_neg:.1f}" width="{w:.1f}" height="{h_neg:.1f}" '
                     f'class="bar-neg" rx="2"/></g>')
        if i % max(n // 8, 1) == 0:
            parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - 10}" class="axis" '
                         f'text-anchor="middle">{p.start.strftime(bucket_label)}</text>')
    line = [(left + (i + 0.5) * slot, top + plot_h * (1 - (p.sentiment_avg + 1) / 2))
            for i, p in enumerate(points) if p.sentiment_avg is not None]
    if len(line) > 1:
        path = " ".join(f"{'M' if j == 0 else 'L'}{x:.1f},{y:.1f}" for j, (x, y) in enumerate(line))
        parts.append(f'<path d="{path}" class="sentiment"/>')
    if points:
        start = points[0].start
        span = (points[-1].start - start) * (n / max(n - 1, 1)) if n > 1 else None
        for m in markers:
            if span is None or not span.total_seconds():
                break
            frac = (m.at - start) / span
            if not 0 <= frac <= 1:
                continue
            x = left + frac * plot_w
            cls = "marker-incident" if m.kind == "incident" else "marker"
            parts.append(f'<g class="{cls}"><title>{escape(m.label)} — {m.at:%Y-%m-%d %H:%M} UTC</title>'
                         f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>'
                         f'<text x="{x + 4:.1f}" y="{top + 10}">{escape(m.label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
