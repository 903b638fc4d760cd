"""The urgent-item detector: a classified item of urgency ``critical`` is an insight of its own. Pure.

An item is flagged once in its life: on the first revision that is critical (revision 1, or the
correction that makes it critical). A later revision that stays critical, drops and rises again, or
is redelivered, flags nothing new. The insight id is derived from the item, so even a repeated
detection is the same insight and the same event.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from feedbackloop.contracts import ClassifiedFeedback, Insight, InsightWindow

__all__ = ["urgent_insight", "urgent_insight_id"]

_KIND_WORDS = {"bug": "bug", "feature_request": "feature request", "question": "question",
               "complaint": "complaint", "praise": "praise", "other": "item"}


def urgent_insight_id(feedback_id: uuid.UUID) -> uuid.UUID:
    """The one ``urgent_item`` insight an item can ever have."""
    return uuid.uuid5(feedback_id, "urgent_item")


def urgent_insight(item: ClassifiedFeedback, *, already_flagged: bool, now: datetime) -> Insight | None:
    """The ``urgent_item`` insight for ``item``, or None when it is not critical or was flagged before.

    ``already_flagged`` says whether an earlier revision of the item already produced the insight.
    Praise and positive items are never urgent, whatever urgency the classifier gave them (it weighs the
    customer's plan, so a glowing review from an enterprise account can come out "critical").
    """
    if item.urgency != "critical" or already_flagged or item.kind == "praise" or item.sentiment.label == "positive":
        return None
    customer = item.customer.name or item.customer.id or "an unknown customer"
    plan = f" ({item.customer.plan})" if item.customer.plan else ""
    top = max(item.themes, key=lambda t: t.confidence, default=None)
    return Insight(
        insight_id=urgent_insight_id(item.feedback_id),
        type="urgent_item",
        title=f"Critical {_KIND_WORDS.get(item.kind, item.kind)} from {customer}{plan}",
        theme=top.id if top else None,
        window=InsightWindow(from_=item.created_at, to=item.created_at),
        metrics={},
        severity="critical",
        evidence=[item.feedback_id],
        created_at=now,
    )
