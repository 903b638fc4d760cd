"""Ingest use cases: each opens a unit of work, calls the domain, stores the result with its outbox rows, commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from feedbackloop.contracts import FEEDBACK_RAW
from feedbackloop.db import UnitOfWorkFactory
from ingest.domain.feedback import FeedbackIn, normalize
from ingest.store.models import FeedbackItem
from ingest.store.repository import FeedbackRepository

__all__ = ["accept_feedback", "raw_event_id"]


def raw_event_id(feedback_id: uuid.UUID) -> str:
    """The event that first publishes an item has an id derived from it: a re-run can never publish it twice."""
    return str(uuid.uuid5(feedback_id, "feedback.raw.v1"))


async def accept_feedback(
    uow_factory: UnitOfWorkFactory, items: Sequence[FeedbackIn], received_at: datetime | None = None
) -> list[uuid.UUID]:
    """Store new items and queue their events, all in one transaction; items already stored are left as they are.

    Returns every item's ``feedback_id`` in input order, new or not: a retried delivery gets the same answer.
    """
    received = received_at or datetime.now(UTC)
    normalized = [(item, normalize(item, received)) for item in items]
    async with uow_factory() as uow:
        repo = FeedbackRepository(uow.session)
        known = await repo.existing_ids(str(raw.feedback_id) for _, raw in normalized)
        for item, raw in normalized:
            key = str(raw.feedback_id)
            if key in known:
                continue
            known.add(key)
            repo.add(
                FeedbackItem(
                    feedback_id=key,
                    source=raw.source,
                    external_id=raw.external_id,
                    created_at=raw.created_at,
                    received_at=raw.received_at,
                    item=raw.model_dump(mode="json"),
                    raw=item.model_dump(mode="json"),
                )
            )
            uow.publish(FEEDBACK_RAW, raw, event_id=raw_event_id(raw.feedback_id))
        await uow.commit()
    return [raw.feedback_id for _, raw in normalized]
