"""Reads and writes of aggregation's store.

Writers (:class:`FeedbackRepository`, :class:`InsightRepository`) work on a unit of work's session
and never commit. Readers (:class:`ReadQueries`) open their own read-only session on the runtime's
``read_engine`` per call, so that the dashboard never takes SQLite's write lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aggregation.domain.filters import FeedbackFilter, InsightFilter, ThemeFilter
from aggregation.domain.items import FeedbackRow, ThemeRow, as_utc
from aggregation.store.models import FeedbackRecord, FeedbackTheme, InsightRecord

__all__ = ["FeedbackRepository", "InsightRepository", "Page", "ReadQueries", "ThemePage", "ThemeStats"]


_FEEDBACK = cast(Table, FeedbackRecord.__table__)
_THEMES = cast(Table, FeedbackTheme.__table__)
# The statements of the apply path, built once: their cache keys are computed once, and each execution
# only passes its parameters.
_STORED = select(_FEEDBACK.c.revision, _FEEDBACK.c.data).where(_FEEDBACK.c.feedback_id == bindparam("b_id"))
_INSERT_FEEDBACK = insert(_FEEDBACK)
_UPDATE_FEEDBACK = update(_FEEDBACK).where(_FEEDBACK.c.feedback_id == bindparam("b_id"))
_DELETE_THEMES = delete(_THEMES).where(_THEMES.c.feedback_id == bindparam("b_id"))
_INSERT_THEMES = insert(_THEMES)
_INSIGHT_EXISTS = select(InsightRecord.__table__.c.insight_id).where(
    InsightRecord.__table__.c.insight_id == bindparam("b_id"))


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def revision_of(self, feedback_id: str) -> int | None:
        """The stored revision of the item, None if it was never stored."""
        result = await self.session.execute(
            select(FeedbackRecord.revision).where(FeedbackRecord.feedback_id == feedback_id))
        return result.scalar_one_or_none()

    async def stored(self, feedback_id: str) -> tuple[int, dict[str, Any]] | None:
        """The stored (revision, data) of the item, None if it was never stored."""
        row = (await self.session.execute(_STORED, {"b_id": feedback_id})).one_or_none()
        return (row.revision, row.data) if row is not None else None

    async def replace(self, row: FeedbackRow, themes: Sequence[ThemeRow], *, exists: bool) -> None:
        """Write ``row`` over the stored item (or insert it) and make ``themes`` its only theme rows."""
        values = row.values()
        if exists:
            await self.session.execute(_UPDATE_FEEDBACK, {**values, "b_id": row.feedback_id})
            await self.session.execute(_DELETE_THEMES, {"b_id": row.feedback_id})
        else:
            await self.session.execute(_INSERT_FEEDBACK, values)
        if themes:
            await self.session.execute(_INSERT_THEMES, [t.values() for t in themes])


class InsightRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, insight_id: str) -> bool:
        result = await self.session.execute(_INSIGHT_EXISTS, {"b_id": insight_id})
        return result.scalar_one_or_none() is not None

    async def add(self, insight_id: str, type_: str, severity: str, theme: str | None, created_at: datetime,
                  data: dict[str, Any]) -> None:
        await self.session.execute(insert(InsightRecord).values(
            insight_id=insight_id, type=type_, severity=severity, theme=theme, created_at=as_utc(created_at),
            data=data))

    async def published(self, insight_id: str) -> tuple[str, dict[str, Any]] | None:
        """The stored (severity, data) of the insight's latest revision; None when there is no such insight."""
        row = (await self.session.execute(select(InsightRecord.severity, InsightRecord.data)
                                          .where(InsightRecord.insight_id == insight_id))).one_or_none()
        return (row.severity, dict(row.data)) if row is not None else None

    async def revise(self, insight_id: str, severity: str, data: dict[str, Any]) -> None:
        """Replace the insight's data with a later revision's; ``created_at`` (its place in lists) stays."""
        await self.session.execute(update(InsightRecord).where(InsightRecord.insight_id == insight_id)
                                   .values(severity=severity, data=data))

    async def acknowledge(self, insight_id: str, at: datetime, by: str | None) -> dict[str, Any] | None:
        """Mark the insight acknowledged (the first acknowledgement is kept); None when there is no such insight."""
        result = await self.session.execute(select(InsightRecord.data, InsightRecord.acknowledged_at)
                                            .where(InsightRecord.insight_id == insight_id))
        row = result.one_or_none()
        if row is None:
            return None
        if row.acknowledged_at is None:
            await self.session.execute(update(InsightRecord).where(InsightRecord.insight_id == insight_id)
                                       .values(acknowledged_at=as_utc(at), acknowledged_by=by))
        return dict(row.data)


@dataclass(frozen=True)
class Page:
    """One page of a list; ``next_key`` is the sort key of its last row when more rows follow."""

    items: list[dict[str, Any]]
    next_key: list[Any] | None


@dataclass(frozen=True)
class ThemeStats:
    id: str
    name: str
    count: int
    negative_count: int
    negative_share: float
    last_seen: datetime


@dataclass(frozen=True)
class ThemePage:
    items: list[ThemeStats]
    next_key: list[Any] | None


class ReadQueries:
    """The dashboard's read model; every method is one read-only transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def feedback(self, feedback_id: str) -> dict[str, Any] | None:
        async with AsyncSession(self.engine) as session:
            result = await session.execute(
                select(FeedbackRecord.data).where(FeedbackRecord.feedback_id == feedback_id))
            return result.scalar_one_or_none()

    async def list_feedback(self, filters: FeedbackFilter, after: tuple[datetime, str] | None) -> Page:
        """Items matching ``filters``, newest first by (created_at, feedback_id), after the key ``after``."""
        f = FeedbackRecord
        stmt = select(f.data, f.created_at, f.feedback_id)
        equal = {f.product_area: filters.product_area, f.kind: filters.kind, f.sentiment_label: filters.sentiment,
                 f.urgency: filters.urgency, f.source: filters.source, f.channel: filters.channel,
                 f.customer_id: filters.customer, f.customer_plan: filters.plan}
        for column, value in equal.items():
            if value is not None:
                stmt = stmt.where(column == value)
        if filters.theme is not None:
            stmt = stmt.where(f.feedback_id.in_(
                select(FeedbackTheme.feedback_id).where(FeedbackTheme.theme_id == filters.theme)))
        if filters.from_ is not None:
            stmt = stmt.where(f.created_at >= filters.from_)
        if filters.to is not None:
            stmt = stmt.where(f.created_at < filters.to)
        if filters.q is not None:
            stmt = stmt.where(func.lower(f.text).contains(filters.q.lower(), autoescape=True))
        if after is not None:
            at, last_id = after
            stmt = stmt.where(or_(f.created_at < at, and_(f.created_at == at, f.feedback_id < last_id)))
        stmt = stmt.order_by(f.created_at.desc(), f.feedback_id.desc()).limit(filters.limit + 1)
        async with AsyncSession(self.engine) as session:
            rows = (await session.execute(stmt)).all()
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        next_key = [as_utc(rows[-1].created_at).isoformat(), rows[-1].feedback_id] if more else None
        return Page([r.data for r in rows], next_key)

    async def themes(self, filters: ThemeFilter, after: tuple[int, str] | None) -> ThemePage:
        """Per theme: items, negative items and the newest item's time, by count desc then theme id."""
        t, f = FeedbackTheme, FeedbackRecord
        count = func.count(t.feedback_id)
        negative = func.sum(case((f.sentiment_label == "negative", 1), else_=0))
        stmt = (select(t.theme_id, count.label("count"), negative.label("negative"),
                       func.max(f.created_at).label("last_seen"))
                .join(f, f.feedback_id == t.feedback_id).group_by(t.theme_id))
        if filters.from_ is not None:
            stmt = stmt.where(f.created_at >= filters.from_)
        if filters.to is not None:
            stmt = stmt.where(f.created_at < filters.to)
        if after is not None:
            last_count, last_id = after
            stmt = stmt.having(or_(count < last_count, and_(count == last_count, t.theme_id > last_id)))
        stmt = stmt.order_by(count.desc(), t.theme_id.asc()).limit(filters.limit + 1)
        async with AsyncSession(self.engine) as session:
            rows = (await session.execute(stmt)).all()
            more = len(rows) > filters.limit
            rows = rows[: filters.limit]
            names = await self._latest_names(session, [r.theme_id for r in rows])
        stats = [ThemeStats(id=r.theme_id, name=names.get(r.theme_id, r.theme_id), count=r.count,
                            negative_count=int(r.negative or 0),
                            negative_share=round(int(r.negative or 0) / r.count, 4) if r.count else 0.0,
                            last_seen=as_utc(r.last_seen)) for r in rows]
        return ThemePage(stats, [rows[-1].count, rows[-1].theme_id] if more else None)

    @staticmethod
    async def _latest_names(session: AsyncSession, theme_ids: list[str]) -> dict[str, str]:
        """Each theme's name as its newest item carries it (a renamed theme shows its new name)."""
        if not theme_ids:
            return {}
        t, f = FeedbackTheme, FeedbackRecord
        ranked = (select(t.theme_id, t.theme_name,
                         func.row_number().over(partition_by=t.theme_id,
                                                order_by=(f.created_at.desc(), f.feedback_id.desc())).label("rank"))
                  .join(f, f.feedback_id == t.feedback_id).where(t.theme_id.in_(theme_ids)).subquery())
        rows = await session.execute(select(ranked.c.theme_id, ranked.c.theme_name).where(ranked.c.rank == 1))
        return {r.theme_id: r.theme_name for r in rows}

    async def list_insights(self, filters: InsightFilter, after: tuple[datetime, str] | None) -> Page:
        """Insights of the given type and severity, newest first by (created_at, insight_id)."""
        i = InsightRecord
        stmt = select(i.data, i.created_at, i.insight_id, i.acknowledged_at, i.acknowledged_by)
        if filters.acknowledged is not None:
            stmt = stmt.where(i.acknowledged_at.is_not(None) if filters.acknowledged else i.acknowledged_at.is_(None))
        if filters.type is not None:
            stmt = stmt.where(i.type == filters.type)
        if filters.severity is not None:
            stmt = stmt.where(i.severity == filters.severity)
        if after is not None:
            at, last_id = after
            stmt = stmt.where(or_(i.created_at < at, and_(i.created_at == at, i.insight_id < last_id)))
        stmt = stmt.order_by(i.created_at.desc(), i.insight_id.desc()).limit(filters.limit + 1)
        async with AsyncSession(self.engine) as session:
            rows = (await session.execute(stmt)).all()
        more = len(rows) > filters.limit
        rows = rows[: filters.limit]
        next_key = [as_utc(rows[-1].created_at).isoformat(), rows[-1].insight_id] if more else None
        return Page([_with_ack(r.data, r.acknowledged_at, r.acknowledged_by) for r in rows], next_key)


def _with_ack(data: dict[str, Any], at: datetime | None, by: str | None) -> dict[str, Any]:
    """The insight's data, plus ``acknowledged_at``/``acknowledged_by`` once it is acknowledged."""
    if at is None:
        return data
    return {**data, "acknowledged_at": as_utc(at).isoformat(), "acknowledged_by": by}
