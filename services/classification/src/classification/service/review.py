"""The review queue (``GET /v1/review``): the items whose labels the classifier is unsure of, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classification.store.repository import ClassificationRepository
from feedbackloop.contracts import ClassifiedFeedback
from feedbackloop.http import keyset_page

__all__ = ["ReviewPage", "review_queue"]


@dataclass(frozen=True)
class ReviewPage:
    items: list[ClassifiedFeedback]
    next_cursor: str | None
    total: int


async def review_queue(sessions: async_sessionmaker[AsyncSession], *, after: tuple[datetime, str] | None,
                       limit: int, reason: str | None = None, kind: str | None = None) -> ReviewPage:
    """The items waiting for a person's look (``needs_review``), oldest first, a page at a time; ``total`` counts
    the whole queue (unfiltered). A correction of an item takes it off the queue. Reads only (a read session)."""
    async with sessions() as session:
        repo = ClassificationRepository(session)
        rows = await repo.review_page(after, limit + 1, reason=reason, kind=kind)
        total = await repo.review_count()
    page, next_cursor = keyset_page(rows, limit, key=lambda r: (r.created_at, r.feedback_id))
    return ReviewPage([ClassifiedFeedback.model_validate(r.item) for r in page], next_cursor, total)
