"""Reads and writes of the rollups, clusters, releases and detector state.

Writers work on a unit of work's session and never commit. :class:`AnalyticsQueries` opens its own
read-only session per call on the runtime's ``read_engine``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from aggregation.domain.episodes import Episode
from aggregation.domain.items import as_utc
from aggregation.domain.rollups import Measures, RollupKey
from aggregation.store.models import (
    ClusterRecord,
    DirtyHour,
    EpisodeRecord,
    FeedbackRecord,
    FeedbackTheme,
    InsightRecord,
    ReleaseRecord,
    Rollup,
    ThemeName,
)

__all__ = [
    "MEASURES",
    "AnalyticsQueries",
    "ClusterRow",
    "DetectionRepository",
    "ReleaseRepository",
    "RollupRepository",
]

MEASURES = ("count", "negative", "sentiment_sum", "urgent", "mrr_sum", "nps_responses", "nps_promoters",
            "nps_detractors", "csat_responses", "csat_satisfied")


def _upsert(session: AsyncSession, table: Any) -> Any:
    return (postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table))


def measures_of(row: Any) -> Measures:
    """Measures of an ORM ``Rollup`` or of a result row labelled with the measure names."""
    values = row._mapping if hasattr(row, "_mapping") else {name: getattr(row, name) for name in MEASURES}
    return Measures(**{name: values[name] or 0 for name in MEASURES})


class RollupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, deltas: Mapping[RollupKey, Measures]) -> None:
        """Add each delta to its cell (creating it at zero first); cells are never deleted, zeros stay."""
        if not deltas:
            return
        rows = [{"bucket": k.bucket, "start": k.start, "dimension": k.dimension, "key": k.key, **m.values()}
                for k, m in deltas.items()]
        stmt = _upsert(self.session, Rollup.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=["bucket", "start", "dimension", "key"],
            set_={name: getattr(Rollup.__table__.c, name) + getattr(stmt.excluded, name) for name in MEASURES})
        await self.session.execute(stmt, rows)

    async def name_themes(self, names: Iterable[tuple[str, str]], seen_at: datetime) -> None:
        """Record each (theme id, name) unless a newer item already named the theme."""
        rows = [{"theme_id": t, "name": n, "seen_at": as_utc(seen_at)} for t, n in names]
        if not rows:
            return
        stmt = _upsert(self.session, ThemeName.__table__)
        stmt = stmt.on_conflict_do_update(index_elements=["theme_id"],
                                          set_={"name": stmt.excluded.name, "seen_at": stmt.excluded.seen_at},
                                          where=ThemeName.__table__.c.seen_at <= stmt.excluded.seen_at)
        await self.session.execute(stmt, rows)

    async def mark_dirty(self, hours: Iterable[int]) -> None:
        rows = [{"start": h, "version": 1} for h in sorted(set(hours))]
        if not rows:
            return
        stmt = _upsert(self.session, DirtyHour.__table__)
        stmt = stmt.on_conflict_do_update(index_elements=["start"],
                                          set_={"version": DirtyHour.__table__.c.version + 1})
        await self.session.execute(stmt, rows)

    async def move_cluster(self, old: str | None, new: str | None, terms: list[str], seen_at: datetime) -> None:
        """The item left cluster ``old`` and joined ``new`` (either may be None)."""
        if old == new:
            if new is not None:
                await self.session.execute(update(ClusterRecord).where(ClusterRecord.cluster_id == new)
                                           .values(terms=terms))
            return
        if old is not None:
            await self.session.execute(update(ClusterRecord).where(ClusterRecord.cluster_id == old)
                                       .values(items=ClusterRecord.items - 1))
        if new is not None:
            stmt = _upsert(self.session, ClusterRecord.__table__).values(
                cluster_id=new, terms=terms, items=1, last_seen=as_utc(seen_at), insight_id=None)
            stmt = stmt.on_conflict_do_update(index_elements=["cluster_id"], set_={
                "items": ClusterRecord.__table__.c["items"] + 1, "terms": stmt.excluded.terms,
                "last_seen": func.max(ClusterRecord.__table__.c.last_seen, stmt.excluded.last_seen)
                if self.session.get_bind().dialect.name == "sqlite"
                else func.greatest(ClusterRecord.__table__.c.last_seen, stmt.excluded.last_seen)})
            await self.session.execute(stmt)


@dataclass(frozen=True)
class ClusterRow:
    cluster_id: str
    terms: list[str]
    items: int


class DetectionRepository:
    """What the detectors read and write inside their unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def dirty_hours(self, limit: int = 5000) -> dict[int, int]:
        rows = await self.session.execute(select(DirtyHour.start, DirtyHour.version).order_by(DirtyHour.start)
                                          .limit(limit))
        return {r.start: r.version for r in rows}

    async def clear_dirty(self, judged: Mapping[int, int]) -> None:
        """Forget the judged hours, except those that changed again since they were read."""
        for start, version in judged.items():
            await self.session.execute(delete(DirtyHour).where(DirtyHour.start == start,
                                                               DirtyHour.version == version))

    async def first_hour(self) -> int | None:
        result = await self.session.execute(select(func.min(Rollup.start)).where(
            Rollup.bucket == "hour", Rollup.dimension == "all", Rollup.count > 0))
        return result.scalar_one_or_none()

    async def hourly(self, dimensions: Iterable[str], begin: int,
                     end: int) -> dict[tuple[str, str], dict[int, Measures]]:
        """(dimension, key) → {hour start → measures} for hours in [begin, end)."""
        rows = await self.session.execute(select(Rollup).where(
            Rollup.bucket == "hour", Rollup.dimension.in_(list(dimensions)), Rollup.start >= begin,
            Rollup.start < end))
        out: dict[tuple[str, str], dict[int, Measures]] = {}
        for (row,) in rows:
            out.setdefault((row.dimension, row.key), {})[row.start] = measures_of(row)
        return out

    async def episodes(self, detector: str, subject: str) -> list[Episode]:
        rows = await self.session.execute(select(EpisodeRecord).where(EpisodeRecord.detector == detector,
                                                                      EpisodeRecord.subject == subject))
        return [Episode(r.detector, r.subject, r.first, r.last, r.insight_id) for (r,) in rows]

    async def open_episode(self, episode: Episode) -> None:
        await self.session.execute(insert(EpisodeRecord).values(
            detector=episode.detector, subject=episode.subject, first=episode.first, last=episode.last,
            insight_id=episode.insight_id))

    async def extend_episode(self, episode: Episode, at: int) -> None:
        await self.session.execute(update(EpisodeRecord).where(
            EpisodeRecord.detector == episode.detector, EpisodeRecord.subject == episode.subject,
            EpisodeRecord.first == episode.first).values(last=max(episode.last, at)))

    async def evidence(self, dimension: str, key: str, begin: datetime, end: datetime, limit: int = 50) -> list[str]:
        """Ids of the items of (dimension, key) created in [begin, end), oldest first."""
        f = FeedbackRecord
        stmt = select(f.feedback_id).where(f.created_at >= begin, f.created_at < end)
        if dimension == "theme":
            stmt = stmt.where(f.feedback_id.in_(select(FeedbackTheme.feedback_id)
                                                .where(FeedbackTheme.theme_id == key)))
        elif dimension == "product_area":
            stmt = stmt.where(f.product_area == key)
        elif dimension == "cluster":
            stmt = stmt.where(f.cluster_id == key)
        rows = await self.session.execute(stmt.order_by(f.created_at, f.feedback_id).limit(limit))
        return [r[0] for r in rows]

    async def first_created(self, ids: list[str]) -> datetime | None:
        if not ids:
            return None
        result = await self.session.execute(select(func.min(FeedbackRecord.created_at))
                                            .where(FeedbackRecord.feedback_id.in_(ids)))
        value = result.scalar_one_or_none()
        return as_utc(value) if value is not None else None

    async def theme_names(self, ids: Iterable[str]) -> dict[str, str]:
        rows = await self.session.execute(select(ThemeName.theme_id, ThemeName.name)
                                          .where(ThemeName.theme_id.in_(list(ids))))
        return {r.theme_id: r.name for r in rows}

    async def release_before(self, moment: datetime, lookback: float) -> dict[str, Any] | None:
        """The newest release at or before ``moment`` and at most ``lookback`` seconds before it."""
        from datetime import timedelta
        rows = await self.session.execute(select(ReleaseRecord.data).where(
            ReleaseRecord.released_at <= moment, ReleaseRecord.released_at >= moment - timedelta(seconds=lookback))
            .order_by(ReleaseRecord.released_at.desc()).limit(1))
        return rows.scalar_one_or_none()

    async def unflagged_clusters(self, min_items: int) -> list[ClusterRow]:
        rows = await self.session.execute(select(ClusterRecord).where(ClusterRecord.insight_id.is_(None),
                                                                      ClusterRecord.items >= min_items))
        return [ClusterRow(r.cluster_id, list(r.terms), r.items) for (r,) in rows]

    async def cluster_items_since(self, cluster_id: str, since: datetime) -> int:
        result = await self.session.execute(select(func.count()).select_from(FeedbackRecord).where(
            FeedbackRecord.cluster_id == cluster_id, FeedbackRecord.created_at >= since))
        return int(result.scalar_one())

    async def flag_cluster(self, cluster_id: str, insight_id: str) -> None:
        await self.session.execute(update(ClusterRecord).where(ClusterRecord.cluster_id == cluster_id)
                                   .values(insight_id=insight_id))


class ReleaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, release_id: str, version: str, kind: str, service: str | None, released_at: datetime,
                     data: dict[str, Any]) -> None:
        values = {"release_id": release_id, "version": version, "kind": kind, "service": service,
                  "released_at": as_utc(released_at), "data": data}
        stmt = _upsert(self.session, ReleaseRecord.__table__).values(values)
        stmt = stmt.on_conflict_do_update(index_elements=["release_id"],
                                          set_={k: v for k, v in values.items() if k != "release_id"})
        await self.session.execute(stmt)


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

    async def theme_names(self) -> dict[str, str]:
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(select(ThemeName.theme_id, ThemeName.name))
            return {r.theme_id: r.name for r in rows}

    async def median_classify_seconds(self, begin: datetime, end: datetime) -> float | None:
        f = FeedbackRecord
        where = and_(f.created_at >= begin, f.created_at < end, f.classify_seconds.is_not(None))
        async with AsyncSession(self.engine) as session:
            n = int((await session.execute(select(func.count()).select_from(f).where(where))).scalar_one())
            if n == 0:
                return None
            values: list[float] = [float(v) for (v,) in await session.execute(
                select(f.classify_seconds).where(where).order_by(f.classify_seconds)
                .offset((n - 1) // 2).limit(2 - n % 2)) if v is not None]
        return sum(values) / len(values)

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
