"""Reads and writes of ingest's items. Never commits: the unit of work does."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.store.models import FeedbackItem


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
