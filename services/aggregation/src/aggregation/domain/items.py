"""A classified item as the aggregation store keeps it, and the rule that decides whether an event replaces it. Pure.

``feedback.classified.v1`` is keyed by ``feedback_id`` and a correction re-publishes the item with
``revision`` + 1. Events may arrive twice or out of order (a replay, a rebalance), so an event is
applied only when it is newer than what is stored: the stored item is then replaced as a whole,
themes included, which moves a corrected item from its old themes to its new ones.

An item created more than :data:`BACKDATED_AFTER` before it was received is a back-dated import (a CSV
of last year's tickets, a backfill through the API), not live feedback: it is stored and counted like any
other, but its created → classified time measures the import, not the pipeline, so the time-to-classify
KPI leaves it out (``backdated`` on its row).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from feedbackloop.contracts import ClassifiedFeedback

__all__ = ["BACKDATED_AFTER", "FeedbackRow", "ThemeRow", "as_utc", "feedback_row", "is_backdated", "should_apply",
           "theme_rows"]

#: Live feedback reaches ingest within minutes of being written (webhooks retry for a while); an item created
#: longer than this before it was received was imported after the fact.
BACKDATED_AFTER = timedelta(hours=1)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already (that is how the store returns them)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def is_backdated(created_at: datetime, received_at: datetime) -> bool:
    """Whether an item created at ``created_at`` and received at ``received_at`` is a back-dated import."""
    return as_utc(received_at) - as_utc(created_at) > BACKDATED_AFTER


def should_apply(stored_revision: int | None, incoming_revision: int) -> bool:
    """True when an event of ``incoming_revision`` must replace the stored item.

    ``stored_revision`` is None for an item not seen yet. An event whose revision is not newer than
    the stored one is a duplicate or arrived late, and changes nothing.
    """
    return stored_revision is None or incoming_revision > stored_revision


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """The column values of one item in the ``feedback`` table; ``data`` is the event's data as JSON."""

    feedback_id: str
    revision: int
    created_at: datetime
    classified_at: datetime | None
    received_at: datetime
    source: str
    channel: str
    kind: str
    sentiment_label: str
    sentiment_score: float
    urgency: str
    product_area: str | None
    language: str | None
    customer_id: str | None
    customer_plan: str | None
    customer_mrr: float | None
    text: str
    data: dict[str, Any]
    classify_seconds: float | None = None
    cluster_id: str | None = None
    backdated: bool = False

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class ThemeRow:
    feedback_id: str
    theme_id: str
    theme_name: str
    confidence: float

    def values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def feedback_row(item: ClassifiedFeedback) -> FeedbackRow:
    """The ``feedback`` row of ``item``; every datetime in UTC."""
    return FeedbackRow(
        feedback_id=str(item.feedback_id),
        revision=item.revision,
        created_at=as_utc(item.created_at),
        classified_at=as_utc(item.classified_at) if item.classified_at else None,
        received_at=as_utc(item.received_at),
        source=item.source,
        channel=item.channel,
        kind=item.kind,
        sentiment_label=item.sentiment.label,
        sentiment_score=item.sentiment.score,
        urgency=item.urgency,
        product_area=item.product_area,
        language=item.language,
        customer_id=item.customer.id,
        customer_plan=item.customer.plan,
        customer_mrr=item.customer.mrr,
        text=item.text,
        data=item.model_dump(mode="json", by_alias=True),
        classify_seconds=(as_utc(item.classified_at) - as_utc(item.created_at)).total_seconds()
        if item.classified_at else None,
        cluster_id=item.cluster.id if item.cluster is not None else None,
        backdated=is_backdated(item.created_at, item.received_at),
    )


def theme_rows(item: ClassifiedFeedback) -> list[ThemeRow]:
    """One row per distinct theme of ``item``; a theme listed twice keeps its highest confidence."""
    best: dict[str, ThemeRow] = {}
    for theme in item.themes:
        known = best.get(theme.id)
        if known is None or theme.confidence > known.confidence:
            best[theme.id] = ThemeRow(str(item.feedback_id), theme.id, theme.name, theme.confidence)
    return list(best.values())
