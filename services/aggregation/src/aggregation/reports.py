"""Read use cases over the rollups, shared by the JSON API and the dashboard: theme ranking, KPIs, series.

Windows are whole hours (``domain/windows.py``). Distinct customers and their revenue come from day
cells, so for a window that does not start and end on a whole day they are counted over the whole
days it touches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aggregation.domain.impact import impact_score
from aggregation.domain.kpis import KpiSet, kpis_of
from aggregation.domain.rollups import Bucket, Measures, bucket_start
from aggregation.domain.series import DAY
from aggregation.domain.windows import Window
from aggregation.store.analytics import AnalyticsQueries

__all__ = ["CustomerImpact", "KpiReport", "SeriesPoint", "ThemeReport", "add_top_customers", "kpi_report",
           "rank_themes", "series"]

_SIZE = {"hour": 3600, "day": DAY, "week": 7 * DAY}


def _epoch(moment: datetime) -> int:
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


def _days(window: Window) -> tuple[int, int]:
    """The whole days a window touches, as [begin, end) epoch seconds."""
    begin, end = _epoch(window.start), _epoch(window.end)
    return begin - begin % DAY, end if end % DAY == 0 else end - end % DAY + DAY


async def _theme_sums(q: AnalyticsQueries, window: Window | None) -> dict[str, Measures]:
    if window is None:
        return await q.sums("total", "theme", 0, 1)
    begin, end = _epoch(window.start), _epoch(window.end)
    day_aligned = begin % DAY == 0 and end % DAY == 0
    return await q.sums("day" if day_aligned else "hour", "theme", begin, end)


async def rank_themes(q: AnalyticsQueries, window: Window | None, mrr_unit: float) -> list[ThemeReport]:
    """Every theme with items in ``window`` (None: all time), by impact (``domain/impact.py``) then id.

    ``top_customers`` is left empty: fill it for the themes shown with :func:`add_top_customers`. Counts
    come from the rollups, distinct customers and their mrr from ``theme_totals`` (all time) or from the
    presence rows of the days the window touches, aggregated in SQL."""
    themes = await _theme_sums(q, window)
    days = _days(window) if window is not None else (None, None)
    customers = await q.theme_customers(*days)
    previous: dict[str, Measures] = {}
    if window is not None:
        previous = await _theme_sums(q, window.previous())
    names = await q.theme_names()
    reports = []
    for theme_id, m in themes.items():
        n_customers, mrr = customers.get(theme_id, (0, 0.0))
        mrr = round(mrr, 2)
        before = previous.get(theme_id)
        prev_count = (before.count if before else 0) if window is not None else None
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


async def add_top_customers(q: AnalyticsQueries, window: Window | None, reports: list[ThemeReport]) -> None:
    """Fill ``top_customers`` (highest mrr, then most items, then id; at most 5) of each report in place,
    over the days ``window`` touches (all time for None)."""
    days = _days(window) if window is not None else (None, None)
    top = await q.top_customers([r.id for r in reports], *days)
    for report in reports:
        report.top_customers = [CustomerImpact(c, n, mrr) for c, n, mrr in top.get(report.id, [])]


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


async def _kpis(q: AnalyticsQueries, window: Window) -> KpiSet:
    sums = await q.sums("hour", "all", _epoch(window.start), _epoch(window.end))
    median, backdated = await q.classify_latency(window.start, window.end)
    return kpis_of(sums.get("*", Measures()), median, backdated)


async def kpi_report(q: AnalyticsQueries, window: Window) -> KpiReport:
    return KpiReport(window, await _kpis(q, window), await _kpis(q, window.previous()))


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    count: int
    negative: int
    negative_share: float | None
    sentiment_avg: float | None


async def series(q: AnalyticsQueries, dimension: Literal["theme", "all"], key: str, bucket: Bucket,
                 start: datetime, end: datetime) -> list[SeriesPoint]:
    """One point per bucket from the bucket holding ``start`` up to ``end`` (exclusive), zeros included."""
    size = _SIZE[bucket]
    first = bucket_start(start, bucket)
    cells = await q.cells(bucket, dimension, first, _epoch(end), key=key)
    by_start = {s: m for _, s, m in cells}
    points = []
    t = first
    while t < _epoch(end):
        m = by_start.get(t, Measures())
        points.append(SeriesPoint(datetime.fromtimestamp(t, UTC), m.count, m.negative,
                                  round(m.negative / m.count, 4) if m.count else None,
                                  round(m.sentiment_sum / m.count, 4) if m.count else None))
        t += size
    return points


def points_between(bucket: Bucket, start: datetime, end: datetime) -> int:
    return int((end - start) / timedelta(seconds=_SIZE[bucket])) + 1
