"""Reads and writes of ingest's items and webhook nonces. Never commits: the unit of work does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.store.models import FeedbackItem, WebhookNonce


class FeedbackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def existing_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        rows = await self.session.execute(select(FeedbackItem.feedback_id).where(FeedbackItem.feedback_id.in_(wanted)))
        return {r[0] for r in rows}

    def add(self, item: FeedbackItem) -> None:
        self.session.add(item)

    async def get(self, feedback_id: str) -> FeedbackItem | None:
        return await self.session.get(FeedbackItem, feedback_id)

    async def earliest_with_content(self, content_key: str, since: datetime, until: datetime) -> str | None:
        """The id of the earliest stored item with ``content_key`` created in [since, until], if any."""
        row = await self.session.execute(
            select(FeedbackItem.feedback_id)
            .where(
                FeedbackItem.content_key == content_key,
                FeedbackItem.created_at >= since,
                FeedbackItem.created_at <= until,
            )
            .order_by(FeedbackItem.created_at, FeedbackItem.feedback_id)
            .limit(1)
        )
        return row.scalar_one_or_none()

    async def add_nonce(self, source: str, nonce: str, seen_at: datetime) -> bool:
        """Record a single-use nonce; False when it was already recorded (a replay)."""
        if await self.session.get(WebhookNonce, (source, nonce)) is not None:
            return False
        self.session.add(WebhookNonce(source=source, nonce=nonce, seen_at=seen_at))
        await self.session.flush()
        return True
