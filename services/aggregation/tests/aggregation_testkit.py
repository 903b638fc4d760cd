"""Builders of example events for the aggregation tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feedbackloop.contracts import ClassifiedFeedback, feedback_id_for


def classified(external_id: str = "1", **changes: Any) -> ClassifiedFeedback:
    base: dict[str, Any] = {
        "feedback_id": feedback_id_for("api", external_id), "source": "api", "external_id": external_id,
        "channel": "ticket", "text": "Checkout crashes",
        "customer": {"id": "acme", "name": "Acme", "plan": "enterprise", "mrr": 1200},
        "created_at": datetime(2025, 3, 1, 12, 0, tzinfo=UTC), "received_at": datetime(2025, 3, 1, 12, 1, tzinfo=UTC),
        "revision": 1, "sentiment": {"label": "negative", "score": -0.8}, "kind": "bug",
        "themes": [{"id": "checkout", "name": "Checkout", "confidence": 0.9}], "urgency": "normal",
        "model": {"name": "rules", "version": "1"},
    }
    base.update(changes)
    return ClassifiedFeedback.model_validate(base)
