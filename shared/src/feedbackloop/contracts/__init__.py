"""The public contract: topics, the CloudEvents envelope and the payload models."""

from feedbackloop.contracts.envelope import CONTENT_TYPE, DecodeError, Envelope, decode, encode, new_envelope
from feedbackloop.contracts.events import (
    Author,
    ClassifiedFeedback,
    Customer,
    Insight,
    InsightWindow,
    ModelInfo,
    Rating,
    RawFeedback,
    Sentiment,
    ThemeLabel,
    feedback_id_for,
)
from feedbackloop.contracts.topics import FEEDBACK_CLASSIFIED, FEEDBACK_RAW, INSIGHTS, TOPICS, Topic, topic_named

__all__ = [
    "CONTENT_TYPE",
    "FEEDBACK_CLASSIFIED",
    "FEEDBACK_RAW",
    "INSIGHTS",
    "TOPICS",
    "Author",
    "ClassifiedFeedback",
    "Customer",
    "DecodeError",
    "Envelope",
    "Insight",
    "InsightWindow",
    "ModelInfo",
    "Rating",
    "RawFeedback",
    "Sentiment",
    "ThemeLabel",
    "Topic",
    "decode",
    "encode",
    "feedback_id_for",
    "new_envelope",
    "topic_named",
]
