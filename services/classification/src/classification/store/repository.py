"""Reads and writes of classifications. Never commits: the unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Table, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from classification.store.models import Classification, Correction, TaxonomyVersion, ThemeCluster
from feedbackloop.contracts import ClassifiedFeedback

__all__ = ["ClassificationRepository", "ClusterRepository", "CorrectionRepository", "TaxonomyRepository"]


@cache
def _upsert_statement(dialect_name: str) -> Any:
    """``INSERT … ON CONFLICT (feedback_id) DO UPDATE … WHERE revision < excluded.revision``, built once per dialect
    (its values are bound at execution)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    table = Classification.__table__
    insert = dialect.insert(table)
    return insert.on_conflict_do_update(
        index_elements=[table.c.feedback_id],
        set_={k: insert.excluded[k]
              for k in ("revision", "classified_at", "kind", "sentiment", "item", "needs_review")},
        where=table.c.revision < insert.excluded.revision,
    )


def _row(item: ClassifiedFeedback, created_at: datetime) -> dict[str, Any]:
    return {
        "feedback_id": str(item.feedback_id),
        "revision": item.revision,
        "created_at": created_at,
        "classified_at": item.classified_at or created_at,
        "kind": item.kind,
        "sentiment": item.sentiment.label,
        "item": item.model_dump(mode="json"),
        "needs_review": item.needs_review,
    }


class ClassificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, feedback_id: str) -> Classification | None:
        return await self.session.get(Classification, feedback_id)

    async def stored_among(self, feedback_ids: Sequence[str]) -> set[str]:
        """Which of ``feedback_ids`` have a row (any revision), in one statement per 500 ids."""
        found: set[str] = set()
        ids = list(dict.fromkeys(feedback_ids))
        for start in range(0, len(ids), 500):
            rows = await self.session.scalars(select(Classification.feedback_id)
                                              .where(Classification.feedback_id.in_(ids[start:start + 500])))
            found.update(rows)
        return found

    async def upsert(self, item: ClassifiedFeedback, *, created_at: datetime) -> bool:
        """Store ``item`` unless a row with the same or a newer revision exists; True when it was written.

        Idempotent: storing the same revision twice changes nothing, and an older revision never overwrites a
        newer one, so a redelivered or replayed event cannot undo a correction.
        """
        values = _row(item, created_at)
        result = await self.session.execute(_upsert_statement(self.session.get_bind().dialect.name), values)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def upsert_many(self, items: Sequence[tuple[ClassifiedFeedback, datetime]]) -> None:
        """:meth:`upsert` of each ``(item, created_at)``, in one statement (executemany)."""
        if items:
            await self.session.execute(_upsert_statement(self.session.get_bind().dialect.name),
                                       [_row(item, created_at) for item, created_at in items])

    async def count_since(self, since: datetime) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Classification)
                                             .where(Classification.created_at >= since)) or 0)

    async def page(self, since: datetime, after: tuple[datetime, str] | None, limit: int) -> Sequence[Classification]:
        """Items first labelled at or after ``since`` in (created_at, feedback_id) order, after the ``after`` cursor."""
        query = select(Classification).where(Classification.created_at >= since)
        if after is not None:
            query = query.where(tuple_(Classification.created_at, Classification.feedback_id) > after)
        query = query.order_by(Classification.created_at, Classification.feedback_id).limit(limit)
        return (await self.session.scalars(query)).all()


    async def review_page(self, after: tuple[datetime, str] | None, limit: int, *, reason: str | None = None,
                          kind: str | None = None) -> Sequence[Classification]:
        """Items marked ``needs_review`` in (created_at, feedback_id) order after the ``after`` key; ``reason``
        (a label name) and ``kind`` filter. The reason filter reads the stored item, so it runs over the flagged
        rows only (a small share of all)."""
        query = select(Classification).where(Classification.needs_review.is_(True))
        if kind is not None:
            query = query.where(Classification.kind == kind)
        query = query.order_by(Classification.created_at, Classification.feedback_id)
        found: list[Classification] = []
        while len(found) < limit:
            chunk_query = query if after is None else query.where(
                tuple_(Classification.created_at, Classification.feedback_id) > after)
            chunk = (await self.session.scalars(chunk_query.limit(limit if reason is None else 500))).all()
            found += [row for row in chunk if reason is None or reason in (row.item.get("review_reasons") or ())]
            if reason is None or len(chunk) < 500:
                break
            after = (chunk[-1].created_at, chunk[-1].feedback_id)
        return found[:limit]

    async def review_count(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(Classification)
                                             .where(Classification.needs_review.is_(True))) or 0)


class TaxonomyRepository:
    """Versions put through the API; the newest (highest ``seq``) is the taxonomy in force."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self) -> TaxonomyVersion | None:
        return await self.session.scalar(select(TaxonomyVersion).order_by(TaxonomyVersion.seq.desc()).limit(1))

    async def by_version(self, version: str) -> TaxonomyVersion | None:
        return await self.session.scalar(select(TaxonomyVersion).where(TaxonomyVersion.version == version))

    async def history(self) -> Sequence[TaxonomyVersion]:
        return (await self.session.scalars(select(TaxonomyVersion).order_by(TaxonomyVersion.seq.desc()))).all()

    async def add(self, version: str, document: dict[str, Any], changed_by: str, changed_at: datetime) -> None:
        self.session.add(TaxonomyVersion(version=version, document=document, changed_by=changed_by,
                                         changed_at=changed_at))
        await self.session.flush()


class CorrectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, correction: Correction) -> None:
        self.session.add(correction)
        await self.session.flush()

    async def all(self) -> Sequence[Correction]:
        return (await self.session.scalars(select(Correction).order_by(Correction.id))).all()

    async def fields_of(self, feedback_ids: Sequence[str]) -> dict[str, set[str]]:
        """The label fields a person set on each item (union over its corrections)."""
        if not feedback_ids:
            return {}
        rows = await self.session.execute(select(Correction.feedback_id, Correction.labels)
                                          .where(Correction.feedback_id.in_(list(feedback_ids))))
        fields: dict[str, set[str]] = {}
        for feedback_id, labels in rows:
            fields.setdefault(feedback_id, set()).update(labels)
        return fields


class ClusterRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> Sequence[ThemeCluster]:
        return (await self.session.scalars(select(ThemeCluster))).all()

    async def save(self, cluster_id: str, centroid: list[float], size: int, term_counts: dict[str, int],
                   terms: list[str], now: datetime) -> None:
        row = await self.session.get(ThemeCluster, cluster_id)
        if row is None:
            self.session.add(ThemeCluster(id=cluster_id, centroid=centroid, size=size, term_counts=term_counts,
                                          terms=terms, created_at=now, updated_at=now))
        else:
            row.centroid, row.size, row.term_counts, row.terms, row.updated_at = (
                centroid, size, term_counts, terms, now)
        await self.session.flush()

    async def save_many(self, states: Sequence[dict[str, Any]]) -> None:
        """Each cluster's latest state (``id``, ``centroid``, ``size``, ``term_counts``, ``terms``, ``now``): new ones
        inserted, known ones updated (their ``created_at`` kept), in one statement (executemany)."""
        if not states:
            return
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        table = ThemeCluster.__table__
        insert = dialect.insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={k: insert.excluded[k] for k in ("centroid", "size", "term_counts", "terms", "updated_at")})
        await self.session.execute(statement, [
            {"id": s["id"], "centroid": s["centroid"], "size": s["size"], "term_counts": s["term_counts"],
             "terms": s["terms"], "created_at": s["now"], "updated_at": s["now"]} for s in states])


class ErasureRepository:
    """Deletes what classification holds of erased items: labels, corrections and retained classified events."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def erase(self, feedback_ids: Sequence[str], outbox: Table, topic: str) -> int:
        """Delete the items' classifications, corrections and ``topic`` outbox rows (sent or not: a replay must
        not publish their text again, an unsent one never will be). How many classifications went."""
        if not feedback_ids:
            return 0
        ids = list(feedback_ids)
        gone = await self.session.execute(delete(Classification).where(Classification.feedback_id.in_(ids)))
        await self.session.execute(delete(Correction).where(Correction.feedback_id.in_(ids)))
        await self.session.execute(delete(outbox).where(outbox.c.topic == topic, outbox.c.key.in_(ids)))
        return int(getattr(gone, "rowcount", 0) or 0)
