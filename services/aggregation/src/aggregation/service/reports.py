"""Read use cases over the rollups, shared by the JSON API and the dashboard: theme ranking, KPIs, series.

Each loads the sums it needs through :class:`~aggregation.store.analytics.AnalyticsQueries` (read-only
sessions) and hands them to ``domain/reports.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aggregation.domain.kpis import KpiSet, kpis_of
from aggregation.domain.loops import LoopKpis, loop_kpis
from aggregation.domain.reports import (
    CustomerImpact,
    KpiReport,
    SeriesPoint,
    ThemeReport,
    days_touched,
    epoch,
    series_points,
    theme_reports,
)
from aggregation.domain.rollups import Bucket, Measures, bucket_start
from aggregation.domain.series import DAY
from aggregation.domain.windows import Window
from aggregation.store.analytics import AnalyticsQueries
from aggregation.store.links import LinkQueries, times_of

__all__ = ["add_top_customers", "kpi_report", "loop_report", "rank_themes", "series"]


async def _theme_sums(q: AnalyticsQueries, window: Window | None) -> dict[str, Measures]:
    if window is None:
        return await q.sums("total", "theme", 0, 1)
    begin, end = epoch(window.start), epoch(window.end)
    day_aligned = begin % DAY == 0 and end % DAY == 0
    return await q.sums("day" if day_aligned else "hour", "theme", begin, end)


async def rank_themes(q: AnalyticsQueries, window: Window | None, mrr_unit: float) -> list[ThemeReport]:
    """Every theme with items in ``window`` (None: all time), by impact (``domain/impact.py``) then id.

    ``top_customers`` is left empty: fill it for the themes shown with :func:`add_top_customers`. Counts
    come from the rollups, distinct customers and their mrr from ``theme_totals`` (all time) or from the
    presence rows of the days the window touches, aggregated in SQL."""
    themes = await _theme_sums(q, window)
    days = days_touched(window) if window is not None else (None, None)
    customers = await q.theme_customers(*days)
    previous = await _theme_sums(q, window.previous()) if window is not None else None
    return theme_reports(themes, customers, previous, await q.theme_names(), mrr_unit)


async def add_top_customers(q: AnalyticsQueries, window: Window | None, reports: list[ThemeReport]) -> None:
    """Fill ``top_customers`` (highest mrr, then most items, then id; at most 5) of each report in place,
    over the days ``window`` touches (all time for None)."""
    days = days_touched(window) if window is not None else (None, None)
    top = await q.top_customers([r.id for r in reports], *days)
    for report in reports:
        report.top_customers = [CustomerImpact(c, n, mrr) for c, n, mrr in top.get(report.id, [])]


async def _kpis(q: AnalyticsQueries, window: Window) -> KpiSet:
    sums = await q.sums("hour", "all", epoch(window.start), epoch(window.end))
    median, backdated = await q.classify_latency(window.start, window.end)
    return kpis_of(sums.get("*", Measures()), median, backdated)


async def kpi_report(q: AnalyticsQueries, window: Window) -> KpiReport:
    return KpiReport(window, await _kpis(q, window), await _kpis(q, window.previous()))


async def series(q: AnalyticsQueries, dimension: Literal["theme", "all"], key: str, bucket: Bucket,
                 start: datetime, end: datetime) -> list[SeriesPoint]:
    """One point per bucket from the bucket holding ``start`` up to ``end`` (exclusive), zeros included."""
    first = bucket_start(start, bucket)
    cells = await q.cells(bucket, dimension, first, epoch(end), key=key)
    return series_points({s: m for _, s, m in cells}, bucket, first, epoch(end))


async def loop_report(q: LinkQueries, start: datetime, end: datetime, theme_id: str | None = None) -> LoopKpis:
    """The loop figures of [start, end) (of one theme when given): the links made before ``end``, and the items of
    their themes created in the window, with those a closed loop answers (one aggregate statement)."""
    links = [times_of(link) for link in await q.until(end, theme_id)]
    cutoffs: dict[str, datetime | None] = {}
    for t in links:
        if t.theme_id is None:
            continue
        closed = t.closed_at if t.loop_closed_at is not None and t.loop_closed_at < end else None
        known = cutoffs.get(t.theme_id)
        cutoffs[t.theme_id] = max(known, closed) if known is not None and closed is not None else (known or closed)
    linked, answered = await q.item_share(cutoffs, start, end)
    return loop_kpis(links, start, end, linked, answered)
