"""Reads and writes of ingest's items, webhook nonces and erasures. Never commits: the unit of work does."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, insert, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.domain.erasure import ErasureTarget
from ingest.store.models import Erasure, FeedbackItem, WebhookNonce

_ITEMS: Table = FeedbackItem.__table__  # type: ignore[assignment]


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        rows = await self.session.execute(select(FeedbackItem.feedback_id).where(FeedbackItem.feedback_id.in_(wanted)))
        return {r[0] for r in rows}

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new items (``feedback_items`` column → value) in one executemany, bypassing the ORM's
        per-object bookkeeping; the caller has checked they are not stored yet."""
        if rows:
            await self.session.execute(insert(_ITEMS), list(rows))

    async def with_content(
        self, content_keys: Collection[str], since: datetime, until: datetime
    ) -> dict[str, list[tuple[datetime, str]]]:
        """Stored items having one of ``content_keys``, created in [since, until], in ONE query: content key →
        ``(created_at, feedback_id)`` pairs, earliest first (ties by id). ``created_at`` is timezone-aware (UTC)."""
        if not content_keys:
            return {}
        rows = await self.session.execute(
            select(FeedbackItem.content_key, FeedbackItem.created_at, FeedbackItem.feedback_id)
            .where(
                FeedbackItem.content_key.in_(list(content_keys)),
                FeedbackItem.created_at >= since,
                FeedbackItem.created_at <= until,
            )
            .order_by(FeedbackItem.created_at, FeedbackItem.feedback_id)
        )
        found: dict[str, list[tuple[datetime, str]]] = {}
        for key, created, feedback_id in rows:
            if key is None:
                continue
            # SQLite hands back naive datetimes; everything stored is UTC
            aware = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
            found.setdefault(key, []).append((aware, feedback_id))
        return found

    async def add_nonce(self, source: str, nonce: str, seen_at: datetime) -> bool:
        """Record a single-use nonce; False when it was already recorded (a replay)."""
        if await self.session.get(WebhookNonce, (source, nonce)) is not None:
            return False
        self.session.add(WebhookNonce(source=source, nonce=nonce, seen_at=seen_at))
        await self.session.flush()
        return True


class RawCopyRepository:
    """The raw request copies (``feedback_items.raw``) that the retention worker blanks."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def received_before(
        self, cutoff: datetime, *, since: datetime | None, limit: int
    ) -> list[tuple[str, datetime]]:
        """Up to ``limit`` items still holding a raw copy, received before ``cutoff`` (and at or after ``since``),
        as ``(feedback_id, received_at)``, oldest first (ties by id)."""
        query = select(FeedbackItem.feedback_id, FeedbackItem.received_at).where(
            FeedbackItem.received_at < cutoff, FeedbackItem.raw.is_not(None)
        )
        if since is not None:
            query = query.where(FeedbackItem.received_at >= since)
        rows = await self.session.execute(
            query.order_by(FeedbackItem.received_at, FeedbackItem.feedback_id).limit(limit)
        )
        return [(r[0], r[1]) for r in rows]

    async def blank(self, feedback_ids: Sequence[str]) -> None:
        """Set the raw copy of these items to SQL NULL."""
        await self.session.execute(
            update(FeedbackItem)
            .where(FeedbackItem.feedback_id.in_(list(feedback_ids)))
            .values(raw=null())
            .execution_options(synchronize_session=False)
        )


class ErasureRepository:
    """Erasure requests, and the erasing itself: the items' personal fields and their retained raw events."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def matching_ids(self, target: ErasureTarget) -> list[str]:
        """Ids of the items of ``target`` (its customer id or its author's email hash), erased ones excluded,
        in (created_at, feedback_id) order. Reads the JSON of every item: an erasure is rare, not a hot path."""
        conditions = []
        if target.customer_id is not None:
            conditions.append(FeedbackItem.item[("customer", "id")].as_string() == target.customer_id)
        if target.author_email_hash is not None:
            conditions.append(FeedbackItem.item[("author", "email_hash")].as_string() == target.author_email_hash)
        if not conditions:
            return []
        rows = await self.session.execute(
            select(FeedbackItem.feedback_id).where(or_(*conditions))
            .order_by(FeedbackItem.created_at, FeedbackItem.feedback_id)
        )
        return [r[0] for r in rows]

    async def erase_items(self, erased: dict[str, dict[str, Any]]) -> None:
        """Replace each item (feedback id → what it keeps) and drop its raw copy and content key."""
        for feedback_id, item in erased.items():
            await self.session.execute(
                update(FeedbackItem).where(FeedbackItem.feedback_id == feedback_id)
                .values(item=item, raw=null(), content_key=None)
                .execution_options(synchronize_session=False)
            )

    async def items(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = await self.session.execute(
            select(FeedbackItem.feedback_id, FeedbackItem.item).where(FeedbackItem.feedback_id.in_(list(ids))))
        return {r[0]: r[1] for r in rows}

    async def forget_events(self, outbox: Table, topic: str, keys: Sequence[str]) -> int:
        """Delete the outbox rows of ``topic`` keyed by ``keys``, sent or not: a replay must not publish an
        erased item's text again, and one not yet published never will be. How many went."""
        if not keys:
            return 0
        result = await self.session.execute(
            delete(outbox).where(outbox.c.topic == topic, outbox.c.key.in_(list(keys))))
        return int(getattr(result, "rowcount", 0) or 0)

    def add(self, erasure: Erasure) -> None:
        self.session.add(erasure)

    async def get(self, request_id: str) -> Erasure | None:
        return await self.session.get(Erasure, request_id)

    async def event_sent_at(self, outbox: Table, event_id: str) -> tuple[bool, datetime | None]:
        """Whether the request's event is still in the outbox, and when it was published (None: not yet)."""
        row = (await self.session.execute(select(outbox.c.sent_at).where(outbox.c.event_id == event_id))).first()
        return (row is not None, row[0] if row is not None else None)
