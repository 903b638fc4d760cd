"""What the detectors read and write inside their unit of work (:class:`DetectionRepository`): dirty hours,
hourly rollups, episodes, evidence, releases and clusters. It never commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from aggregation.domain.episodes import Episode
from aggregation.domain.items import as_utc
from aggregation.domain.rollups import Measures
from aggregation.store._sql import MEASURES, measures_of
from aggregation.store.models import (
    ClusterRecord,
    DirtyHour,
    EpisodeRecord,
    FeedbackRecord,
    FeedbackTheme,
    ReleaseRecord,
    Rollup,
    ThemeName,
)

__all__ = ["ClusterRow", "DetectionRepository"]

_MEASURE_COLUMNS = [getattr(Rollup, name) for name in MEASURES]
_DIRTY = cast(Table, DirtyHour.__table__)
# Core, so that one statement forgets all the hours a run judged (executemany).
_FORGET_HOUR = delete(_DIRTY).where(_DIRTY.c.start == bindparam("hour"), _DIRTY.c.version == bindparam("seen"))


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
        """Dirty hours, oldest first. On PostgreSQL they are locked, skipping those a consumer is marking right
        now (judged next run): the detector never waits on a consumer, so the two do not deadlock."""
        rows = await self.session.execute(select(DirtyHour.start, DirtyHour.version).order_by(DirtyHour.start)
                                          .limit(limit).with_for_update(skip_locked=True))
        return {r.start: r.version for r in rows}

    async def clear_dirty(self, judged: Mapping[int, int]) -> None:
        """Forget the judged hours, except those that changed again since they were read."""
        if judged:
            await self.session.execute(_FORGET_HOUR, [{"hour": start, "seen": v} for start, v in judged.items()])

    async def first_hour(self) -> int | None:
        result = await self.session.execute(select(func.min(Rollup.start)).where(
            Rollup.bucket == "hour", Rollup.dimension == "all", Rollup.count > 0))
        return result.scalar_one_or_none()

    async def hourly(self, dimensions: Iterable[str], begin: int,
                     end: int) -> dict[tuple[str, str], dict[int, Measures]]:
        """(dimension, key) → {hour start → measures} for hours in [begin, end)."""
        # Columns, not ORM objects: a run after a backfill reads hundreds of thousands of cells, and an entity
        # each (with its identity-map state) would cost several times the cells themselves.
        rows = await self.session.execute(select(Rollup.dimension, Rollup.key, Rollup.start, *_MEASURE_COLUMNS).where(
            Rollup.bucket == "hour", Rollup.dimension.in_(list(dimensions)), Rollup.start >= begin,
            Rollup.start < end))
        out: dict[tuple[str, str], dict[int, Measures]] = {}
        for row in rows:
            out.setdefault((row.dimension, row.key), {})[row.start] = measures_of(row)
        return out

    async def episodes(self, detector: str, subject: str) -> list[Episode]:
        """The subject's episodes of ``detector``, oldest first."""
        rows = await self.session.execute(select(EpisodeRecord).where(EpisodeRecord.detector == detector,
                                                                      EpisodeRecord.subject == subject)
                                          .order_by(EpisodeRecord.first))
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
        rows = await self.session.execute(select(ReleaseRecord.data).where(
            ReleaseRecord.released_at <= moment, ReleaseRecord.released_at >= moment - timedelta(seconds=lookback))
            .order_by(ReleaseRecord.released_at.desc()).limit(1))
        return rows.scalar_one_or_none()

    async def unflagged_clusters(self, min_items: int) -> list[ClusterRow]:
        """Clusters with no insight yet and at least ``min_items`` items; one judged a duplicate of a theme
        only once it has doubled since (its verdict is not paid for on every run)."""
        c = ClusterRecord
        rows = await self.session.execute(select(c).where(
            c.insight_id.is_(None), c.items >= min_items,
            or_(c.judged_items.is_(None), c.items >= 2 * c.judged_items)))
        return [ClusterRow(r.cluster_id, list(r.terms), r.items) for (r,) in rows]

    async def cluster_themes(self, cluster_id: str, since: datetime) -> tuple[int, dict[str, int]]:
        """Of the cluster's items created since ``since``: how many carry a theme, and how many each theme."""
        f, t = FeedbackRecord, FeedbackTheme
        members = and_(f.cluster_id == cluster_id, f.created_at >= since)
        themed = int((await self.session.execute(select(func.count(func.distinct(t.feedback_id))).select_from(t)
                                                 .join(f, f.feedback_id == t.feedback_id).where(members)))
                     .scalar_one())
        rows = await self.session.execute(select(t.theme_id, func.count()).join(f, f.feedback_id == t.feedback_id)
                                          .where(members).group_by(t.theme_id))
        return themed, {r[0]: int(r[1]) for r in rows}

    async def term_use(self, cluster_id: str, words: Iterable[str], since: datetime,
                       sample: int = 1000) -> tuple[int, dict[str, int]]:
        """Of the latest ``sample`` items created since ``since``, outside the cluster, whose text holds every
        one of ``words`` (as substrings, any case): how many there are, and their themes."""
        f = FeedbackRecord
        stmt = select(f.feedback_id).where(f.created_at >= since,
                                           or_(f.cluster_id.is_(None), f.cluster_id != cluster_id))
        for word in words:
            stmt = stmt.where(func.lower(f.text).contains(word.lower(), autoescape=True))
        found = stmt.order_by(f.created_at.desc()).limit(sample).subquery()
        items = int((await self.session.execute(select(func.count()).select_from(found))).scalar_one())
        if not items:
            return 0, {}
        rows = await self.session.execute(select(FeedbackTheme.theme_id, func.count())
                                          .where(FeedbackTheme.feedback_id.in_(select(found.c.feedback_id)))
                                          .group_by(FeedbackTheme.theme_id))
        return items, {r[0]: int(r[1]) for r in rows}

    async def all_theme_names(self) -> dict[str, str]:
        rows = await self.session.execute(select(ThemeName.theme_id, ThemeName.name))
        return {r.theme_id: r.name for r in rows}

    async def mark_duplicate(self, cluster_id: str, theme_id: str, items: int) -> None:
        await self.session.execute(update(ClusterRecord).where(ClusterRecord.cluster_id == cluster_id)
                                   .values(duplicate_of=theme_id, judged_items=items))

    async def cluster_items_since(self, cluster_id: str, since: datetime) -> int:
        result = await self.session.execute(select(func.count()).select_from(FeedbackRecord).where(
            FeedbackRecord.cluster_id == cluster_id, FeedbackRecord.created_at >= since))
        return int(result.scalar_one())

    async def flag_cluster(self, cluster_id: str, insight_id: str) -> None:
        """The cluster is an emerging theme: its insight, and no longer a duplicate of anything."""
        await self.session.execute(update(ClusterRecord).where(ClusterRecord.cluster_id == cluster_id)
                                   .values(insight_id=insight_id, duplicate_of=None))
