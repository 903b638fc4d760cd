"""Aggregation use cases. They run inside the consumer's unit of work: read and write through repositories on
``uow.session``, raise events with ``uow.publish``, never commit (the consumer does, once per batch)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aggregation.domain.items import feedback_row, should_apply, theme_rows
from aggregation.domain.urgent import urgent_insight, urgent_insight_id
from aggregation.store.repository import FeedbackRepository, InsightRepository
from feedbackloop.contracts import INSIGHTS, ClassifiedFeedback, Envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import PoisonMessage

__all__ = ["apply_classified"]


async def apply_classified(uow: UnitOfWork, event: Envelope[Any]) -> bool:
    """Store a ``feedback.classified.v1`` event's item if it is newer than the stored revision.

    Returns whether it was applied. An event not newer than what is stored (a duplicate, or a revision
    that arrived late) changes nothing. Applying it replaces the item and its themes, and raises the
    item's ``urgent_item`` insight the first time the item is critical. Raises :class:`PoisonMessage`
    for an event whose subject is not its item.
    """
    item: ClassifiedFeedback = event.data
    if event.subject != str(item.feedback_id):
        raise PoisonMessage(f"subject {event.subject!r} is not the item's feedback_id {item.feedback_id}")
    feedback = FeedbackRepository(uow.session)
    stored = await feedback.revision_of(str(item.feedback_id))
    if not should_apply(stored, item.revision):
        return False
    await feedback.replace(feedback_row(item), theme_rows(item), exists=stored is not None)

    insights = InsightRepository(uow.session)
    insight_id = str(urgent_insight_id(item.feedback_id))
    insight = urgent_insight(item, already_flagged=await insights.exists(insight_id), now=datetime.now(UTC))
    if insight is not None:
        await insights.add(insight_id, insight.type, insight.severity, insight.theme, insight.created_at,
                           insight.model_dump(mode="json", by_alias=True))
        uow.publish(INSIGHTS, insight, event_id=insight_id)
    return True
