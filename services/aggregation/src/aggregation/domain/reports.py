"""What the read API and the dashboard report over the rollups: themes ranked by impact, KPIs against the window
before, a volume series. Pure: the read use cases (``service/reports.py``) load the sums and call these.

Windows are whole hours (``domain/windows.py``). Distinct customers and their revenue come from day
cells, so for a window that does not start and end on a whole day they are counted over the whole
days it touches (:func:`days_touched`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregation.domain.impact import impact_score
from aggregation.domain.kpis import KpiSet
from aggregation.domain.rollups import Bucket, Measures
from aggregation.domain.series import DAY
from aggregation.domain.windows import Window

__all__ = ["BUCKET_SECONDS", "CustomerImpact", "KpiReport", "SeriesPoint", "ThemeReport", "days_touched", "epoch",
           "points_between", "series_points", "theme_reports"]

#: The length of each bucket of a series, in seconds.
BUCKET_SECONDS = {"hour": 3600, "day": DAY, "week": 7 * DAY}


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass(frozen=True)
class CustomerImpact:
    id: str
    count: int
    mrr: float


@dataclass
class ThemeReport:
    id: str
    name: str
    count: int
    negative_count: int
    negative_share: float
    sentiment_avg: float
    urgent_count: int
    customers: int
    affected_mrr: float
    impact: float
    previous_count: int | None = None
    change: float | None = None  # (count - previous) / previous; None without a previous window or volume
    top_customers: list[CustomerImpact] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["trend"] = {"previous_count": out.pop("previous_count"), "change": out.pop("change")}
        return out


def days_touched(window: Window) -> tuple[int, int]:
    """The whole days a window touches, as [begin, end) epoch seconds."""
    begin, end = epoch(window.start), epoch(window.end)
    return begin - begin % DAY, end if end % DAY == 0 else end - end % DAY + DAY


def theme_reports(themes: Mapping[str, Measures], customers: Mapping[str, tuple[int, float]],
                  previous: Mapping[str, Measures] | None, names: Mapping[str, str],
                  mrr_unit: float) -> list[ThemeReport]:
    """One report per theme of ``themes`` (its measures in the window), by impact (``domain/impact.py``) then id.

    ``customers``: per theme, (distinct customers, the sum of their mrr); ``previous``: the themes' measures in
    the window before, None for all time (then there is no trend). ``top_customers`` is left empty."""
    reports = []
    for theme_id, m in themes.items():
        n_customers, mrr = customers.get(theme_id, (0, 0.0))
        mrr = round(mrr, 2)
        before = previous.get(theme_id) if previous is not None else None
        prev_count = (before.count if before else 0) if previous is not None else None
        reports.append(ThemeReport(
            id=theme_id, name=names.get(theme_id, theme_id), count=m.count, negative_count=m.negative,
            negative_share=round(m.negative / m.count, 4), sentiment_avg=round(m.sentiment_sum / m.count, 4),
            urgent_count=m.urgent, customers=n_customers, affected_mrr=mrr,
            impact=impact_score(volume=m.count, negative=m.negative, urgent=m.urgent, affected_mrr=mrr,
                                mrr_unit=mrr_unit),
            previous_count=prev_count,
            change=round((m.count - prev_count) / prev_count, 4) if prev_count else None))
    reports.sort(key=lambda r: (-r.impact, r.id))
    return reports


@dataclass(frozen=True)
class KpiReport:
    window: Window
    current: KpiSet
    previous: KpiSet

    def change(self) -> dict[str, float | None]:
        """Relative change for volume and time to classify; difference in points for the rest."""
        def diff(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
            return round((a - b) * scale, 4) if a is not None and b is not None else None

        def rel(a: float | None, b: float | None) -> float | None:
            return round((a - b) / b, 4) if a is not None and b else None

        c, p = self.current, self.previous
        return {"volume": rel(c.volume, p.volume), "negative_share": diff(c.negative_share, p.negative_share),
                "sentiment_avg": diff(c.sentiment_avg, p.sentiment_avg), "nps": diff(c.nps, p.nps),
                "csat": diff(c.csat, p.csat),
                "median_time_to_classify_s": rel(c.median_time_to_classify_s, p.median_time_to_classify_s)}


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    count: int
    negative: int
    negative_share: float | None
    sentiment_avg: float | None


def series_points(cells: Mapping[int, Measures], bucket: Bucket, first: int, end: int) -> list[SeriesPoint]:
    """One point per bucket from ``first`` (a bucket's start) up to ``end`` (exclusive, epoch seconds), zeros
    included; ``cells`` maps a bucket's start to its measures."""
    points = []
    t = first
    while t < end:
        m = cells.get(t, Measures())
        points.append(SeriesPoint(datetime.fromtimestamp(t, UTC), m.count, m.negative,
                                  round(m.negative / m.count, 4) if m.count else None,
                                  round(m.sentiment_sum / m.count, 4) if m.count else None))
        t += BUCKET_SECONDS[bucket]
    return points


def points_between(bucket: Bucket, start: datetime, end: datetime) -> int:
    return int((end - start) / timedelta(seconds=BUCKET_SECONDS[bucket])) + 1
