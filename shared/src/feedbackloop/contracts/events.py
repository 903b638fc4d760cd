"""Payload models of the public topics: the ``data`` of each CloudEvent.

These models *are* the contract. Adding an optional field is compatible; renaming, removing or
retyping one is not, and goes to a new topic version (``.v2``). The JSON Schemas in
``shared/schemas/`` are generated from these models (``make schemas``) and a test keeps them in step.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FEEDBACK_NAMESPACE",
    "Author",
    "Channel",
    "ClassifiedFeedback",
    "Cluster",
    "Conversation",
    "Customer",
    "ErasureRequest",
    "Insight",
    "InsightType",
    "InsightWindow",
    "IssueStatus",
    "Kind",
    "LoopClosure",
    "LoopCustomer",
    "LoopIssue",
    "LoopRelease",
    "ModelInfo",
    "PausedChannel",
    "Rating",
    "RawFeedback",
    "Release",
    "Sentiment",
    "SentimentLabel",
    "Severity",
    "ThemeLabel",
    "TrackerChange",
    "TrackerName",
    "Urgency",
    "feedback_id_for",
]

Channel = Literal["ticket", "chat", "survey", "review", "community", "email", "api"]
Kind = Literal["bug", "feature_request", "question", "complaint", "praise", "other"]
Urgency = Literal["low", "normal", "high", "critical"]
SentimentLabel = Literal["positive", "neutral", "negative", "mixed"]
InsightType = Literal["spike", "emerging_theme", "sentiment_drop", "kpi_drop", "urgent_item", "channel_paused",
                      "loop_closed", "loop_regression"]
TrackerName = Literal["github", "jira", "linear"]
#: A tracker issue's state, the same words for every tracker: ``done`` is closed as fixed (GitHub ``completed``,
#: Jira status category *Done* with a resolution other than Won't Do/Duplicate, Linear ``completed``);
#: ``cancelled`` is closed without a fix (GitHub ``not_planned``, Jira Won't Do/Duplicate, Linear ``canceled``).
IssueStatus = Literal["open", "in_progress", "done", "cancelled"]
Severity = Literal["info", "warning", "critical"]

#: Namespace of the deterministic feedback ids. Never change it: ids already published depend on it.
FEEDBACK_NAMESPACE = uuid.UUID("6f1d5a0e-3c1b-5b7e-9a43-2f0c7d8e9b10")


def feedback_id_for(source: str, external_id: str) -> uuid.UUID:
    """The deterministic id of an item: the same delivery from a source is always the same item."""
    return uuid.uuid5(FEEDBACK_NAMESPACE, f"{source}\x1f{external_id}")


class _Model(BaseModel):
    # Consumers must tolerate fields they do not know: producers may add optional ones.
    model_config = ConfigDict(extra="allow")


class Author(_Model):
    id: str | None = Field(default=None, description="Keyed pseudonym (HMAC-SHA256) of the source's author id")
    email_hash: str | None = Field(
        default=None,
        description="Keyed HMAC-SHA256 (ingest's pseudonym key) of the trimmed, lower-cased email: joins an author "
        "across sources without the address, and cannot be recomputed from an address without the key",
    )
    name: str | None = Field(default=None, description="Display name, redacted like the text")


class Customer(_Model):
    id: str | None = Field(default=None, description="The account's id as the source gave it (an account, no person)")
    name: str | None = None
    plan: str | None = None
    mrr: float | None = Field(default=None, ge=0, description="Monthly recurring revenue of the account")
    owner: str | None = Field(default=None, description="Who owns the account on your side (a CSM's email or "
                                                         "handle): told when a loop the customer is in closes")


class Conversation(_Model):
    """The support tool's own conversation an item came from, so that a reply can be posted on it when the loop
    closes. Set by the support-tool connectors (Zendesk tickets, Intercom conversations); an id, not a person."""

    source: str = Field(description="The tool: zendesk | intercom")
    id: str = Field(min_length=1, description="The ticket or conversation id in that tool")


class Rating(_Model):
    kind: Literal["nps", "csat", "stars"]
    value: float
    scale: int = Field(description="Highest value of the scale: 10 for NPS, 5 for CSAT and stars")


class RawFeedback(_Model):
    """One normalized, redacted feedback item as ingest received it (``feedback.raw.v1``)."""

    feedback_id: uuid.UUID
    source: str
    external_id: str = Field(description="Keyed pseudonym (HMAC-SHA256) of the source's own id for the item")
    channel: Channel
    text: str
    subject: str | None = None
    author: Author = Field(default_factory=Author)
    customer: Customer = Field(default_factory=Customer)
    rating: Rating | None = None
    tags: list[str] = Field(default_factory=list)
    url: str | None = None
    language: str | None = Field(default=None, description="Language hint from the source (ISO 639-1)")
    created_at: datetime
    received_at: datetime
    redactions: dict[str, int] = Field(default_factory=dict, description="Placeholders inserted, by kind")
    duplicate_of: uuid.UUID | None = Field(
        default=None, description="An earlier item with the same text from the same author (a near-duplicate)"
    )
    conversation: Conversation | None = Field(
        default=None, description="The support tool's conversation the item came from (for replies when its loop "
                                  "closes); absent for other sources")


class Sentiment(_Model):
    label: SentimentLabel
    score: float = Field(ge=-1, le=1)
    confidence: float | None = Field(
        default=None, ge=0, le=1,
        description="Calibrated probability that the label is right (absent from producers before it was added)")


class ThemeLabel(_Model):
    id: str
    name: str
    confidence: float = Field(ge=0, le=1)


class ModelInfo(_Model):
    name: str
    version: str


class Cluster(_Model):
    """Where an item that fits no theme lands among similar ones: the seed of an emerging theme."""

    id: str
    terms: list[str] = Field(default_factory=list, description="The cluster's most telling terms")
    size: int | None = Field(default=None, ge=1, description="Items in the cluster when this one joined")


class ClassifiedFeedback(RawFeedback):
    """The item with its labels (``feedback.classified.v1``); a correction re-publishes it with ``revision`` + 1."""

    revision: int = Field(ge=1)
    sentiment: Sentiment
    kind: Kind
    themes: list[ThemeLabel] = Field(default_factory=list)
    product_area: str | None = None
    urgency: Urgency
    language: str | None = None
    model: ModelInfo
    corrected_by: str | None = None
    classified_at: datetime | None = None
    cluster: Cluster | None = Field(default=None, description="Set when the item fits no theme")
    kind_confidence: float | None = Field(default=None, ge=0, le=1,
                                          description="Calibrated probability that the kind is right")
    needs_review: bool = Field(default=False,
                               description="A label's confidence is under its review threshold; a person's "
                                           "correction clears it")
    review_reasons: list[str] = Field(default_factory=list,
                                      description="Which labels are unsure: sentiment, kind, themes")


class Release(_Model):
    """A release or incident marker (``releases.v1``), produced by any CI pipeline or ``POST /v1/releases``."""

    release_id: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=200)
    kind: Literal["release", "incident"] = "release"
    service: str | None = None
    released_at: datetime
    link: str | None = None
    description: str | None = None
    issues: list[str] = Field(
        default_factory=list, max_length=500,
        description="Tracker issues this release ships, as URLs or keys (`github:acme/web#42`, `jira:AUTH-7`, "
                    "`linear:ENG-12`): their linked themes' loops close with this release")


class TrackerChange(_Model):
    """A tracker issue changed state (``tracker.v1``): produced by ingest from GitHub, Jira and Linear webhooks.

    ``issue_key`` is the one name of an issue across the system: ``github:<owner>/<repo>#<number>`` (owner and
    repository lower-cased), ``jira:<KEY-123>``, ``linear:<TEAM-123>`` (:mod:`feedbackloop.trackers.keys`)."""

    issue_key: str = Field(min_length=3, max_length=400, pattern=r"^(github|jira|linear):\S+$")
    tracker: TrackerName
    url: str | None = Field(default=None, description="The issue's page")
    title: str | None = None
    status: IssueStatus
    previous_status: IssueStatus | None = Field(default=None, description="When the tracker says what it was")
    action: str = Field(description="The tracker's own word for the change: closed, reopened, updated…")
    resolution: str | None = Field(default=None, description="The tracker's own resolution or state name "
                                                             "(completed, not_planned, Done, Won't Do, Canceled)")
    changed_at: datetime


class LoopIssue(_Model):
    """The tracker issue a loop follows."""

    issue_key: str
    tracker: TrackerName
    url: str | None = None
    title: str | None = None
    status: IssueStatus


class LoopRelease(_Model):
    release_id: str
    version: str
    link: str | None = None


class LoopCustomer(_Model):
    """One customer whose feedback the closed loop answers, with what it takes to tell them."""

    id: str = Field(description="The customer (account) id; `author:<pseudonym>` for an item without an account")
    plan: str | None = None
    mrr: float | None = None
    owner: str | None = Field(default=None, description="The account's owner (`customer.owner` of its items)")
    items: list[uuid.UUID] = Field(default_factory=list, description="Their items in the loop, newest first")
    conversations: list[Conversation] = Field(
        default_factory=list, description="Support-tool conversations of those items, newest first")


class LoopClosure(_Model):
    """What a ``loop_closed`` (or ``loop_regression``) insight is about: the link, its issue, the release, and
    every customer who asked."""

    link_id: str
    theme: str | None = None
    issue: LoopIssue
    release: LoopRelease | None = None
    linked_at: datetime
    closed_at: datetime
    items: int = Field(ge=0, description="Items the loop answers (all of the theme's items up to closed_at)")
    customers: list[LoopCustomer] = Field(default_factory=list)


class ErasureRequest(_Model):
    """A request to erase one customer's or one author's feedback from every store (``privacy.v1``).

    Ingest raises it, through its outbox, in the same transaction as it erases its own copies: it alone can
    resolve an email address (which no other service ever sees) to the affected items. Every consumer deletes or
    blanks what it holds for ``feedback_ids`` (and, for ``customer_id``, the customer's own rows) and records the
    request, so a replayed event changes nothing twice.
    """

    request_id: uuid.UUID
    customer_id: str | None = Field(default=None, description="The account id as published in feedback.raw.v1")
    author_email_hash: str | None = Field(
        default=None, description="The author's `author.email_hash` (never the address itself)")
    feedback_ids: list[uuid.UUID] = Field(
        default_factory=list, description="Every item ingest found for the request: what consumers erase")
    requested_at: datetime
    reason: str = Field(default="", max_length=1000)


class InsightWindow(_Model):
    from_: datetime = Field(alias="from")
    to: datetime

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)


class PausedChannel(_Model):
    """The notification channel a ``channel_paused`` insight is about (produced by notification)."""

    rule_id: uuid.UUID = Field(description="The notification rule the channel belongs to")
    rule_name: str
    team: str = Field(description="The rule's team")
    index: int = Field(ge=0, description="The channel's position in the rule's `channels`")
    type: Literal["webhook", "slack", "email", "tracker", "zendesk", "intercom"]
    target: str = Field(description="The channel's URL with path and query masked (`<scheme>://<host>/***`), "
                                    "or `mailto:` and its recipients")
    last_error: str | None = Field(default=None, description="The error of the last failed delivery")


class Insight(_Model):
    """A spike, an emerging theme, a KPI drop or an urgent item (``insights.v1``); a loop closed (its linked issue
    done or released: ``loop_closed``, with ``loop``) or reopened by new feedback (``loop_regression``); or a
    notification channel paused after failed deliveries (``type: channel_paused``, with ``paused_channel``;
    produced by notification)."""

    insight_id: uuid.UUID
    type: InsightType
    title: str
    theme: str | None = None
    window: InsightWindow
    metrics: dict[str, float | int | str | None] = Field(default_factory=dict)
    severity: Severity
    evidence: list[uuid.UUID] = Field(default_factory=list)
    created_at: datetime
    revision: int = Field(
        default=1, ge=1,
        description="1 when raised; each re-publication of the same insight_id with grown figures adds 1 (under a "
                    "new event id). A consumer that already alerted on this insight_id should treat a higher "
                    "revision as an update, not a new alert")
    updated_at: datetime | None = Field(default=None,
                                        description="When this revision was made; absent on revision 1")
    paused_channel: PausedChannel | None = Field(
        default=None, description="Set on `channel_paused` insights only: the paused channel (the figures, "
                                  "`consecutive_failures` and `held_deliveries`, are in `metrics`)")
    loop: LoopClosure | None = Field(
        default=None, description="Set on `loop_closed` and `loop_regression` insights only: the closed loop")

    model_config = ConfigDict(extra="allow", json_schema_extra={"allOf": [
        {"if": {"properties": {"type": {"const": "channel_paused"}}, "required": ["type"]},
         "then": {"required": ["paused_channel"]}},
        {"if": {"properties": {"type": {"enum": ["loop_closed", "loop_regression"]}}, "required": ["type"]},
         "then": {"required": ["loop"]}}]})

    @model_validator(mode="after")
    def _names_what_it_is_about(self) -> Insight:
        if self.type == "channel_paused" and self.paused_channel is None:
            raise ValueError("a channel_paused insight names its `paused_channel`")
        if self.type in ("loop_closed", "loop_regression") and self.loop is None:
            raise ValueError(f"a {self.type} insight names its `loop`")
        return self
