"""Reads and writes of aggregation's store.

Writers (:class:`FeedbackRepository`, :class:`InsightRepository`) work on a unit of work's session
and never commit. Readers (:class:`ReadQueries`) open their own read-only session on the runtime's
``read_engine`` per call, so that the dashboard never takes SQLite's write lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from aggregation.domain.filters import FeedbackFilter, InsightFilter
from aggregation.domain.items import FeedbackRow, ThemeRow, as_utc
from aggregation.store._sql import InsertOf
from aggregation.store.memo import StoreCache
from aggregation.store.models import FeedbackRecord, FeedbackTheme, InsightRecord

__all__ = ["FeedbackRepository", "InsightRepository", "ItemWriter", "Listed", "ReadQueries"]


_FEEDBACK = cast(Table, FeedbackRecord.__table__)
_THEMES = cast(Table, FeedbackTheme.__table__)
# The statements of the apply path, built once: their cache keys are computed once, and each execution
# only passes its parameters.
_STORED = select(_FEEDBACK.c.feedback_id, _FEEDBACK.c.revision, _FEEDBACK.c.data).where(
    _FEEDBACK.c.feedback_id.in_(bindparam("b_ids", expanding=True)))
_DELETE_THEMES = delete(_THEMES).where(_THEMES.c.feedback_id.in_(bindparam("b_ids", expanding=True)))
_INSERT_THEMES = insert(_THEMES)
_INSIGHT_EXISTS = select(InsightRecord.__table__.c.insight_id).where(
    InsightRecord.__table__.c.insight_id == bindparam("b_id"))


def _feedback_upsert(insert_: InsertOf) -> Any:
    """Insert an item, or replace the stored one when the row written is a later revision."""
    stmt = insert_(_FEEDBACK)
    return stmt.on_conflict_do_update(
        index_elements=["feedback_id"], where=_FEEDBACK.c.revision < stmt.excluded.revision,
        set_={c.name: stmt.excluded[c.name] for c in _FEEDBACK.columns if c.name != "feedback_id"})


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stored(self, feedback_ids: Iterable[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """The stored (revision, data) of each of the items that is stored, in one query."""
        ids = sorted(set(feedback_ids))
        if not ids:
            return {}
        return {r.feedback_id: (r.revision, r.data) for r in await self.session.execute(_STORED, {"b_ids": ids})}


class ItemWriter:
    """Writes a batch's items on the synchronous side of the unit of work's session (when the batch is
    written: ``aggregation.store.staging``)."""

    def __init__(self, session: Session, cache: StoreCache) -> None:
        self.session = session
        self.cache = cache

    def replace(self, rows: Sequence[FeedbackRow], themes: Sequence[ThemeRow]) -> None:
        """Write each row over its stored item (or insert it) and make ``themes`` the items' only theme rows;
        a statement for all the rows, one for the old theme rows, one for the new."""
        if not rows:
            return
        ordered = sorted(rows, key=lambda r: r.feedback_id)
        self.session.execute(self.cache.statement(self.session, "feedback", _feedback_upsert),
                             [r.values() for r in ordered])
        self.session.execute(_DELETE_THEMES, {"b_ids": [r.feedback_id for r in ordered]})
        if themes:
            self.session.execute(_INSERT_THEMES, [t.values() for t in themes])


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
class Listed:
    """A row of a newest-first list: its sort key (``created_at``, ``id``) and the data shown."""

    created_at: datetime
    id: str
    data: dict[str, Any]


class ReadQueries:
    """The dashboard's read model; every method is one read-only transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def feedback(self, feedback_id: str) -> dict[str, Any] | None:
        async with AsyncSession(self.engine) as session:
            result = await session.execute(
                select(FeedbackRecord.data).where(FeedbackRecord.feedback_id == feedback_id))
            return result.scalar_one_or_none()

    async def list_feedback(self, filters: FeedbackFilter, after: tuple[datetime, str] | None,
                            limit: int) -> list[Listed]:
        """Up to ``limit`` items matching ``filters``, newest first by (created_at, feedback_id), after the key
        ``after`` (read ``limit + 1`` for a page: ``feedbackloop.http.keyset_page``)."""
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
            at, last_id = as_utc(after[0]), after[1]
            stmt = stmt.where(or_(f.created_at < at, and_(f.created_at == at, f.feedback_id < last_id)))
        stmt = stmt.order_by(f.created_at.desc(), f.feedback_id.desc()).limit(limit)
        async with AsyncSession(self.engine) as session:
            rows = (await session.execute(stmt)).all()
        return [Listed(as_utc(r.created_at), r.feedback_id, r.data) for r in rows]

    async def list_insights(self, filters: InsightFilter, after: tuple[datetime, str] | None,
                            limit: int) -> list[Listed]:
        """Up to ``limit`` insights of the given type and severity, newest first by (created_at, insight_id),
        after the key ``after``."""
        i = InsightRecord
        stmt = select(i.data, i.created_at, i.insight_id, i.acknowledged_at, i.acknowledged_by)
        if filters.acknowledged is not None:
            stmt = stmt.where(i.acknowledged_at.is_not(None) if filters.acknowledged else i.acknowledged_at.is_(None))
        if filters.type is not None:
            stmt = stmt.where(i.type == filters.type)
        if filters.severity is not None:
            stmt = stmt.where(i.severity == filters.severity)
        if after is not None:
            at, last_id = as_utc(after[0]), after[1]
            stmt = stmt.where(or_(i.created_at < at, and_(i.created_at == at, i.insight_id < last_id)))
        stmt = stmt.order_by(i.created_at.desc(), i.insight_id.desc()).limit(limit)
        async with AsyncSession(self.engine) as session:
            rows = (await session.execute(stmt)).all()
        return [Listed(as_utc(r.created_at), r.insight_id, _with_ack(r.data, r.acknowledged_at, r.acknowledged_by))
                for r in rows]


def _with_ack(data: dict[str, Any], at: datetime | None, by: str | None) -> dict[str, Any]:
    """The insight's data, plus ``acknowledged_at``/``acknowledged_by`` once it is acknowledged."""
    if at is None:
        return data
    return {**data, "acknowledged_at": as_utc(at).isoformat(), "acknowledged_by": by}
