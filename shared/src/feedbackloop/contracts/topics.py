"""The one registry of topics: names, keys, event types and payload models.

Every producer and consumer takes its topic from here, so a name or a schema lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from feedbackloop.contracts.events import (
    ClassifiedFeedback,
    ErasureRequest,
    Insight,
    RawFeedback,
    Release,
    TrackerChange,
)

__all__ = [
    "FEEDBACK_CLASSIFIED", "FEEDBACK_RAW", "INSIGHTS", "PRIVACY", "RELEASES", "TOPICS", "TRACKER", "Topic", "dlq_name",
    "topic_named",
]


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    key_field: str
    model: type[BaseModel]
    description: str

    @property
    def event_type(self) -> str:
        """CloudEvents ``type`` of the topic's events: the topic name, prefixed ``feedbackloop.``."""
        return f"feedbackloop.{self.name}"

    @property
    def dlq(self) -> str:
        return dlq_name(self.name)


FEEDBACK_RAW = Topic(
    name="feedback.raw.v1",
    key_field="feedback_id",
    model=RawFeedback,
    description="A normalized, redacted feedback item as received by ingest.",
)
FEEDBACK_CLASSIFIED = Topic(
    name="feedback.classified.v1",
    key_field="feedback_id",
    model=ClassifiedFeedback,
    description="The item with its labels; a human correction re-publishes it with revision + 1.",
)
INSIGHTS = Topic(
    name="insights.v1",
    key_field="insight_id",
    model=Insight,
    description="A spike, an emerging theme, a sentiment or KPI drop, or an urgent item; a loop closed or "
    "regressed (types loop_closed, loop_regression); or a paused notification channel (type channel_paused).",
)

RELEASES = Topic(
    name="releases.v1",
    key_field="release_id",
    model=Release,
    description="A release or incident marker, produced by any CI pipeline (or POST /v1/releases on aggregation).",
)

PRIVACY = Topic(
    name="privacy.v1",
    key_field="request_id",
    model=ErasureRequest,
    description="An erasure request (GDPR-style) for one customer or one author: every consumer deletes or blanks "
    "what it holds for the listed feedback ids.",
)

TRACKER = Topic(
    name="tracker.v1",
    key_field="issue_key",
    model=TrackerChange,
    description="A GitHub, Jira or Linear issue changed state (opened, closed as done or not, reopened), as the "
    "tracker's own webhook told ingest: what closes a linked theme's loop.",
)

TOPICS: tuple[Topic, ...] = (FEEDBACK_RAW, FEEDBACK_CLASSIFIED, INSIGHTS, RELEASES, PRIVACY, TRACKER)


def dlq_name(topic: str) -> str:
    return f"{topic}.dlq"


def topic_named(name: str) -> Topic:
    """The registered topic called ``name``; ``KeyError`` names the known ones otherwise."""
    for topic in TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in TOPICS)}")
