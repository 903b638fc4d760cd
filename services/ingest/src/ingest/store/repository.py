"""Reads and writes of ingest's items and webhook nonces. Never commits: the unit of work does."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.store.models import FeedbackItem, WebhookNonce

_ITEMS: Table = FeedbackItem.__table__  # type: ignore[assignment]


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        rows = await self.session.execute(select(FeedbackItem.feedback_id).where(FeedbackItem.feedback_id.in_(wanted)))
        return {r[0] for r in rows}

    def add(self, item: FeedbackItem) -> None:
        self.session.add(item)

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert new items (``feedback_items`` column → value) in one executemany, bypassing the ORM's
        per-object bookkeeping; the caller has checked they are not stored yet."""
        if rows:
            await self.session.execute(insert(_ITEMS), list(rows))

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        return await self.session.get(FeedbackItem, feedback_id)

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
