"""Tracker links (``tracker_links``): the writer on a unit of work's session (:class:`LinkRepository`, never
commits) and the read-only queries of the API and dashboard (:class:`LinkQueries`, a session per call on the
runtime's ``read_engine``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aggregation.domain.items import as_utc
from aggregation.domain.loops import LinkFacts, LinkTimes, LoopItem, loop_item
from aggregation.store.models import FeedbackRecord, FeedbackTheme, InsightRecord, ThemeName, TrackerLink

__all__ = ["LinkFilter", "LinkQueries", "LinkRepository", "facts_of", "link_dict"]

_LINKS = cast(Table, TrackerLink.__table__)
_TIMES = ("linked_at", "issue_created_at", "closed_at", "loop_closed_at", "regression_at", "first_report_at",
          "next_attempt_at")


def link_dict(row: Any) -> dict[str, Any]:
    """A link row (Core row or mapping) as a plain dict, datetimes in UTC."""
    values = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    for name in _TIMES:
        if values.get(name) is not None:
            values[name] = as_utc(values[name])
    return values


def facts_of(link: dict[str, Any]) -> LinkFacts:
    return LinkFacts(link_id=link["link_id"], subject=link["subject"], tracker=link["tracker"],
                     issue_key=link["issue_key"], status=link["status"], linked_at=link["linked_at"],
                     theme_id=link["theme_id"], url=link["url"], title=link["title"], closed_at=link["closed_at"],
                     release_id=link["release_id"])


def times_of(link: dict[str, Any]) -> LinkTimes:
    return LinkTimes(linked_at=link["linked_at"], status=link["status"], theme_id=link["theme_id"],
                     created_issue=bool(link["created_issue"]), first_report_at=link["first_report_at"],
                     issue_created_at=link["issue_created_at"], closed_at=link["closed_at"],
                     loop_closed_at=link["loop_closed_at"], customers_told=link["customers_told"] or 0,
                     regression_at=link["regression_at"])


def _items(rows: Iterable[Any]) -> list[LoopItem]:
    return [loop_item(r.feedback_id, r.created_at, r.data) for r in rows]


class LinkRepository:
    """Reads and writes of links and of what closing a loop needs, inside a unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_LINKS).values(values))

    async def get(self, link_id: str) -> dict[str, Any] | None:
        row = (await self.session.execute(select(_LINKS).where(_LINKS.c.link_id == link_id))).one_or_none()
        return link_dict(row) if row is not None else None

    async def update(self, link_id: str, **values: Any) -> None:
        await self.session.execute(update(_LINKS).where(_LINKS.c.link_id == link_id).values(**values))

    async def delete(self, link_id: str) -> bool:
        result = await self.session.execute(delete(_LINKS).where(_LINKS.c.link_id == link_id))
        return bool(getattr(result, "rowcount", 0))

    async def linked(self, subject_key: str, issue_key: str) -> bool:
        """Whether the subject is already linked to the issue."""
        row = await self.session.execute(select(_LINKS.c.link_id).where(_LINKS.c.subject_key == subject_key,
                                                                         _LINKS.c.issue_key == issue_key))
        return row.first() is not None

    async def by_issue(self, issue_keys: Sequence[str]) -> list[dict[str, Any]]:
        """Every link following one of ``issue_keys``, oldest first."""
        if not issue_keys:
            return []
        rows = await self.session.execute(select(_LINKS).where(_LINKS.c.issue_key.in_(list(issue_keys)))
                                          .order_by(_LINKS.c.linked_at, _LINKS.c.link_id))
        return [link_dict(r) for r in rows]

    async def closed_themes(self) -> list[tuple[str, str, datetime]]:
        """(theme id, link id, closed_at) of every theme link whose loop has closed: the regression watch."""
        rows = await self.session.execute(select(_LINKS.c.theme_id, _LINKS.c.link_id, _LINKS.c.closed_at).where(
            _LINKS.c.theme_id.is_not(None), _LINKS.c.subject == "theme", _LINKS.c.closed_at.is_not(None)))
        return [(r.theme_id, r.link_id, as_utc(r.closed_at)) for r in rows]

    async def due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Links whose issue is being created and whose next attempt is due, soonest first."""
        rows = await self.session.execute(select(_LINKS).where(
            _LINKS.c.status == "creating", _LINKS.c.next_attempt_at.is_not(None), _LINKS.c.next_attempt_at <= now)
            .order_by(_LINKS.c.next_attempt_at).limit(limit))
        return [link_dict(r) for r in rows]

    async def next_due(self) -> datetime | None:
        at = (await self.session.execute(select(func.min(_LINKS.c.next_attempt_at)).where(
            _LINKS.c.status == "creating"))).scalar_one_or_none()
        return as_utc(at) if at is not None else None

    async def theme_items(self, theme_id: str, until: datetime | None = None) -> list[LoopItem]:
        """The theme's items (latest revisions), created up to ``until`` when given."""
        f = FeedbackRecord
        stmt = select(f.feedback_id, f.created_at, f.data).join(
            FeedbackTheme, FeedbackTheme.feedback_id == f.feedback_id).where(FeedbackTheme.theme_id == theme_id)
        if until is not None:
            stmt = stmt.where(f.created_at <= until)
        return _items(await self.session.execute(stmt))

    async def items(self, feedback_ids: Sequence[str]) -> list[LoopItem]:
        f = FeedbackRecord
        if not feedback_ids:
            return []
        return _items(await self.session.execute(select(f.feedback_id, f.created_at, f.data)
                                                 .where(f.feedback_id.in_(list(feedback_ids)))))

    async def first_report(self, theme_id: str) -> datetime | None:
        at = (await self.session.execute(select(func.min(FeedbackRecord.created_at)).join(
            FeedbackTheme, FeedbackTheme.feedback_id == FeedbackRecord.feedback_id).where(
            FeedbackTheme.theme_id == theme_id))).scalar_one_or_none()
        return as_utc(at) if at is not None else None

    async def theme_name(self, theme_id: str) -> str | None:
        name = (await self.session.execute(select(ThemeName.name).where(ThemeName.theme_id == theme_id))
                ).scalar_one_or_none()
        return str(name) if name is not None else None

    async def quote_pool(self, theme_id: str, limit: int) -> list[LoopItem]:
        """The theme's ``limit`` newest items, negative ones first: where a new issue's quotes come from."""
        f = FeedbackRecord
        rows = await self.session.execute(
            select(f.feedback_id, f.created_at, f.data).join(FeedbackTheme, FeedbackTheme.feedback_id == f.feedback_id)
            .where(FeedbackTheme.theme_id == theme_id)
            .order_by(case((f.sentiment_label == "negative", 1), else_=0).desc(), f.created_at.desc()).limit(limit))
        return _items(rows)

    async def insight(self, insight_id: str) -> dict[str, Any] | None:
        """The stored data of an insight; None when there is none."""
        row = (await self.session.execute(select(InsightRecord.data).where(InsightRecord.insight_id == insight_id))
               ).one_or_none()
        return dict(row.data) if row is not None else None


@dataclass(frozen=True)
class LinkFilter:
    theme: str | None = None
    status: str | None = None
    tracker: str | None = None


class LinkQueries:
    """The API's and dashboard's reads of links; each method is one read-only transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, link_id: str) -> dict[str, Any] | None:
        async with AsyncSession(self.engine) as session:
            return await LinkRepository(session).get(link_id)

    async def page(self, filters: LinkFilter, after: tuple[datetime, str] | None,
                   limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` links, newest first by (linked_at, link_id), after the key ``after``."""
        stmt = select(_LINKS)
        for column, value in ((_LINKS.c.theme_id, filters.theme), (_LINKS.c.status, filters.status),
                              (_LINKS.c.tracker, filters.tracker)):
            if value is not None:
                stmt = stmt.where(column == value)
        if after is not None:
            at, last = as_utc(after[0]), after[1]
            stmt = stmt.where(or_(_LINKS.c.linked_at < at, and_(_LINKS.c.linked_at == at, _LINKS.c.link_id < last)))
        stmt = stmt.order_by(_LINKS.c.linked_at.desc(), _LINKS.c.link_id.desc()).limit(limit)
        async with AsyncSession(self.engine) as session:
            return [link_dict(r) for r in await session.execute(stmt)]

    async def for_themes(self, theme_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The links of each of ``theme_ids`` (theme and insight links), oldest first: one query for them all."""
        if not theme_ids:
            return {}
        out: dict[str, list[dict[str, Any]]] = {}
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(select(_LINKS).where(_LINKS.c.theme_id.in_(list(theme_ids)))
                                         .order_by(_LINKS.c.linked_at, _LINKS.c.link_id))
            for row in rows:
                link = link_dict(row)
                out.setdefault(link["theme_id"], []).append(link)
        return out

    async def until(self, end: datetime, theme_id: str | None = None) -> list[dict[str, Any]]:
        """Every link made before ``end`` (of one theme when given)."""
        stmt = select(_LINKS).where(_LINKS.c.linked_at < end)
        if theme_id is not None:
            stmt = stmt.where(_LINKS.c.theme_id == theme_id)
        async with AsyncSession(self.engine) as session:
            return [link_dict(r) for r in await session.execute(stmt)]

    async def item_share(self, cutoffs: dict[str, datetime | None], start: datetime,
                         end: datetime) -> tuple[int, int]:
        """(items created in [start, end) in the themes of ``cutoffs``, those of them created up to their theme's
        cutoff — when its loop closed — in one statement). A theme with a None cutoff has no closed loop."""
        if not cutoffs:
            return 0, 0
        f, ft = FeedbackRecord, FeedbackTheme
        closed = {theme: at for theme, at in cutoffs.items() if at is not None}
        answered = case(*[(and_(ft.theme_id == theme, f.created_at <= at), 1) for theme, at in closed.items()],
                        else_=0) if closed else None
        columns = [func.count(func.distinct(f.feedback_id))]
        if answered is not None:
            columns.append(func.count(func.distinct(case((answered == 1, f.feedback_id), else_=None))))
        stmt = select(*columns).select_from(f).join(ft, ft.feedback_id == f.feedback_id).where(
            ft.theme_id.in_(list(cutoffs)), f.created_at >= start, f.created_at < end)
        async with AsyncSession(self.engine) as session:
            row = (await session.execute(stmt)).one()
        return int(row[0] or 0), int(row[1] or 0) if answered is not None else 0
