"""The dashboard's reads over the rollups, presence rows, releases and insights (:class:`AnalyticsQueries`).

Each method opens its own read-only session on the runtime's ``read_engine``, so that the dashboard never
takes SQLite's write lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aggregation.domain.items import as_utc
from aggregation.domain.rollups import Measures
from aggregation.store._sql import MEASURES, cents, measures_of
from aggregation.store.models import (
    FeedbackRecord,
    InsightRecord,
    LabelKey,
    ReleaseRecord,
    Rollup,
    ThemeCustomer,
    ThemeName,
    ThemeTotal,
)

__all__ = ["AnalyticsQueries"]


class AnalyticsQueries:
    """The dashboard's reads over the rollups; each method is one read-only transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def cells(self, bucket: str, dimension: str, begin: int, end: int,
                    key: str | None = None, key_prefix: str | None = None) -> list[tuple[str, int, Measures]]:
        """(key, start, measures) of every cell of ``dimension`` in ``bucket`` with begin ≤ start < end."""
        stmt = select(Rollup).where(Rollup.bucket == bucket, Rollup.dimension == dimension, Rollup.start >= begin,
                                    Rollup.start < end, Rollup.count > 0)
        if key is not None:
            stmt = stmt.where(Rollup.key == key)
        if key_prefix is not None:
            stmt = stmt.where(Rollup.key.startswith(key_prefix, autoescape=True))
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(stmt)
            return [(r.key, r.start, measures_of(r)) for (r,) in rows]

    async def sums(self, bucket: str, dimension: str, begin: int, end: int,
                   key: str | None = None) -> dict[str, Measures]:
        """Per key of ``dimension``, the measures summed over the cells in [begin, end), in SQL."""
        columns = [func.sum(getattr(Rollup, name)).label(name) for name in MEASURES]
        stmt = (select(Rollup.key, *columns).where(Rollup.bucket == bucket, Rollup.dimension == dimension,
                                                   Rollup.start >= begin, Rollup.start < end)
                .group_by(Rollup.key))
        if key is not None:
            stmt = stmt.where(Rollup.key == key)
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(stmt)
            sums = {r.key: measures_of(r) for r in rows}
            return {k: m for k, m in sums.items() if m.count > 0}

    async def theme_customers(self, day_begin: int | None, day_end: int | None) -> dict[str, tuple[int, float]]:
        """Per theme, (distinct customers, the sum of their mean mrr) over the day rows in [day_begin, day_end),
        or all time (from ``theme_totals``) when both are None. Aggregated in SQL."""
        async with AsyncSession(self.engine) as session:
            if day_begin is None or day_end is None:
                rows = await session.execute(select(ThemeTotal.theme_id, ThemeTotal.customers,
                                                    ThemeTotal.affected_mrr).where(ThemeTotal.customers > 0))
                return {r[0]: (int(r[1]), float(r[2])) for r in rows}
            tc = ThemeCustomer.__table__
            count, mrr_sum = func.sum(tc.c["count"]), func.sum(tc.c.mrr_sum)
            pairs = (select(tc.c.theme_key, count.label("n"), mrr_sum.label("m"))
                     .where(tc.c.bucket == "day", tc.c.start >= day_begin, tc.c.start < day_end)
                     .group_by(tc.c.theme_key, tc.c.customer_key).having(count > 0).subquery())
            per_theme = (select(pairs.c.theme_key, func.count().label("customers"),
                                func.sum(cents(pairs.c.m / pairs.c.n)).label("mrr"))
                         .group_by(pairs.c.theme_key).subquery())
            rows = await session.execute(select(LabelKey.value, per_theme.c.customers, per_theme.c.mrr)
                                         .join(per_theme, per_theme.c.theme_key == LabelKey.key))
            return {r[0]: (int(r[1]), float(r[2] or 0.0)) for r in rows}

    async def top_customers(self, theme_ids: Iterable[str], day_begin: int | None, day_end: int | None,
                            n: int = 5) -> dict[str, list[tuple[str, int, float]]]:
        """Per theme, its ``n`` customers of highest mean mrr (then most items, then id) as (id, items, mrr),
        over the day rows in [day_begin, day_end) or all time when both are None."""
        tc = ThemeCustomer.__table__
        out: dict[str, list[tuple[str, int, float]]] = {}
        async with AsyncSession(self.engine) as session:
            keys = {r.key: r.value for r in await session.execute(
                select(LabelKey.value, LabelKey.key).where(LabelKey.kind == "theme",
                                                           LabelKey.value.in_(list(theme_ids))))}
            parts = []
            for key in keys:  # one LIMIT-n index walk per theme, all in one statement
                if day_begin is None or day_end is None:
                    # The n-th best (mrr, count) from the index, walked backwards; then only the rows at or
                    # above it, so that ties are ordered by customer id without sorting the whole theme.
                    theme = and_(tc.c.bucket == "total", tc.c.start == 0, tc.c.theme_key == key)
                    mine = and_(theme, tc.c["count"] > 0)
                    nth = select(tc.c.mrr, tc.c["count"]).where(mine).order_by(
                        tc.c.mrr.desc(), tc.c["count"].desc()).offset(n - 1).limit(1)
                    nth_mrr = func.coalesce(nth.with_only_columns(tc.c.mrr).scalar_subquery(), -1.0)
                    nth_count = func.coalesce(nth.with_only_columns(tc.c["count"]).scalar_subquery(), 1)
                    columns = (literal(key).label("theme"), tc.c.customer_id, tc.c["count"], tc.c.mrr_sum)
                    # (`count + 0`: a filter, not an index range, so the mrr range below drives the walk)
                    above = union_all(select(*columns).where(theme, tc.c["count"] + 0 > 0, tc.c.mrr > nth_mrr),
                                      select(*columns).where(theme, tc.c.mrr == nth_mrr,  # ties: an index range
                                                             tc.c["count"] >= nth_count))
                    stmt = select(above.subquery())
                else:
                    count, mrr_sum = func.sum(tc.c["count"]), func.sum(tc.c.mrr_sum)
                    stmt = (select(literal(key).label("theme"), tc.c.customer_id, count, mrr_sum)
                            .where(tc.c.bucket == "day", tc.c.theme_key == key, tc.c.start >= day_begin,
                                   tc.c.start < day_end)
                            .group_by(tc.c.customer_key, tc.c.customer_id).having(count > 0)
                            .order_by(cents(mrr_sum / count).desc(), count.desc(), tc.c.customer_id)
                            .limit(n))
                parts.append(select(stmt.subquery()))
            rows = (await session.execute(union_all(*parts))).all() if parts else []
        for theme_key, value, count_, mrr_total in rows:
            out.setdefault(keys[theme_key], []).append((value, int(count_), round(float(mrr_total) / int(count_), 2)))
        return {t: sorted(c, key=lambda c: (-c[2], -c[1], c[0]))[:n] for t, c in out.items()}

    async def theme_names(self) -> dict[str, str]:
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(select(ThemeName.theme_id, ThemeName.name))
            return {r.theme_id: r.name for r in rows}

    async def classify_latency(self, begin: datetime, end: datetime) -> tuple[float | None, int]:
        """The median created → classified seconds of the items created in [begin, end) and received live,
        and how many back-dated imports of the window that leaves out (``domain/items.py``)."""
        f = FeedbackRecord
        timed = and_(f.created_at >= begin, f.created_at < end, f.classify_seconds.is_not(None))
        live = and_(timed, f.backdated.is_(False))
        async with AsyncSession(self.engine) as session:
            excluded = int((await session.execute(select(func.count()).select_from(f)
                                                  .where(timed, f.backdated.is_(True)))).scalar_one())
            n = int((await session.execute(select(func.count()).select_from(f).where(live))).scalar_one())
            if n == 0:
                return None, excluded
            values: list[float] = [float(v) for (v,) in await session.execute(
                select(f.classify_seconds).where(live).order_by(f.classify_seconds)
                .offset((n - 1) // 2).limit(2 - n % 2)) if v is not None]
        return sum(values) / len(values), excluded

    async def releases(self, begin: datetime | None, end: datetime | None, limit: int = 200) -> list[dict[str, Any]]:
        stmt = select(ReleaseRecord.data)
        if begin is not None:
            stmt = stmt.where(ReleaseRecord.released_at >= begin)
        if end is not None:
            stmt = stmt.where(ReleaseRecord.released_at < end)
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(stmt.order_by(ReleaseRecord.released_at.desc()).limit(limit))
            return [r[0] for r in rows]

    async def insight_acks(self, ids: list[str]) -> dict[str, tuple[datetime, str | None]]:
        if not ids:
            return {}
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(select(InsightRecord.insight_id, InsightRecord.acknowledged_at,
                                                InsightRecord.acknowledged_by)
                                         .where(InsightRecord.insight_id.in_(ids),
                                                InsightRecord.acknowledged_at.is_not(None)))
            return {r.insight_id: (as_utc(r.acknowledged_at), r.acknowledged_by) for r in rows}
