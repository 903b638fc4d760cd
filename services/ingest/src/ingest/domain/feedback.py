"""The generic feedback API's input, and its normalization into a ``feedback.raw.v1`` item. Pure.

What leaves ingest, field by field (the README's redaction section has the same list, with the reasons):

    feedback_id          UUIDv5 of (source, the source's own id): the topic's id contract, unchanged
    source, channel      kept: which tool, which kind of conversation (no person in them)
    external_id          keyed pseudonym (HMAC-SHA256 of source + the source's id): stable, not reversible
    text, subject        redacted (:mod:`ingest.domain.redact`)
    author.id            keyed pseudonym of source + the source's author id
    author.email_hash    keyed pseudonym of the trimmed, lower-cased address (was an unsalted SHA-256)
    author.name          redacted as text (a display name can carry an address or a number)
    customer.id          kept: an account (company) id, not a person — rules, per-account impact, MRR at risk and
                         the owners told when a loop closes all key on it; send a pseudonym if yours is personal
    customer.name        redacted as text (an account name, shown in urgent-item alerts)
    customer.plan, .mrr, .owner   kept: routing rules and urgency use them
    customer.<other>     a string redacted as text, a number or boolean kept, anything else dropped
    tags                 each redacted as text
    url                  credentials dropped; query values and fragment redacted as text; an ``@`` path redacted
    rating, language, created_at, received_at, duplicate_of, redactions   kept: no personal data
    conversation         kept: the support tool's ticket or conversation id (``{source, id}``, e.g. a Zendesk
                         ticket number) — it names a ticket, not a person; notification replies on it when the
                         item's loop closes
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from feedbackloop.contracts import Author, Conversation, Customer, Rating, RawFeedback, feedback_id_for
from feedbackloop.contracts.events import Channel
from ingest.domain.pseudonym import Pseudonymizer
from ingest.domain.redact import DEFAULT_PHONE_REGIONS, redact, redact_many, redact_url

__all__ = [
    "MAX_TEXT_CHARS", "RAW_CUSTOMER_FIELDS", "AuthorIn", "ConversationIn", "FeedbackIn", "RedactionPolicy", "normalize",
]

MAX_TEXT_CHARS = 100_000
# A run of spaces and tabs becomes one space. A lone space is already one, so it is not matched: a run is taken
# from its first character (a tab, or a space with more after it), which leaves ordinary text without a match.
_WS = re.compile(r"[\t\r\f\v][ \t\r\f\v]*| [ \t\r\f\v]+")


class AuthorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=320, description="Hashed on arrival; never published")
    name: str | None = Field(default=None, max_length=256)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["nps", "csat", "stars"]
    value: float
    scale: int | None = Field(default=None, ge=1, le=100, description="Defaults: NPS 10, CSAT 5, stars 5")

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v


class ConversationIn(BaseModel):
    """The support tool's conversation an item came from: a ticket or conversation id, not a person."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="The tool, e.g. `zendesk`, `intercom`")
    id: str = Field(min_length=1, max_length=256, pattern=r"^[^\s\x00-\x1f\x7f]+$",
                    description="The ticket or conversation id in that tool (no spaces)")


class FeedbackIn(BaseModel):
    """One item for ``POST /v1/feedback``: the reference schema any tool can target."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "api",
                    "external_id": "42",
                    "text": "Checkout crashes on iOS when I pay with Apple Pay",
                    "customer": {"id": "acme", "plan": "enterprise", "mrr": 1200},
                }
            ]
        },
    )

    source: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Where the item comes from, e.g. `api`")
    external_id: str = Field(min_length=1, max_length=256, description="The source's own id of the item")
    text: str = Field(max_length=MAX_TEXT_CHARS, description="What the customer said")
    subject: str | None = Field(default=None, max_length=1000)
    channel: Channel = "api"
    author: AuthorIn | None = None
    customer: Customer | None = None
    rating: RatingIn | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    url: str | None = Field(default=None, max_length=2048)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    created_at: datetime | None = Field(default=None, description="When the customer wrote it; defaults to now")
    conversation: ConversationIn | None = Field(
        default=None, description="The support tool's ticket or conversation the item came from, so a reply can "
        "be posted on it when its loop closes (published as is: an id, not a person)")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)


_DEFAULT_SCALE = {"nps": 10, "csat": 5, "stars": 5}


@dataclass(frozen=True)
class RedactionPolicy:
    """What :func:`normalize` needs besides the item: the pseudonym key and the regions of national phones."""

    pseudonyms: Pseudonymizer
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS


#: Customer fields published as they are: the routing and urgency inputs downstream (rules on `customer.plan`,
#: urgency from `plan` and `mrr`, an account `owner` to route to). Any other extra field a sender adds to
#: `customer` is redacted as text when it is a string, kept when a number or boolean, dropped otherwise.
RAW_CUSTOMER_FIELDS = frozenset({"plan", "mrr", "owner"})


def normalize(item: FeedbackIn, received_at: datetime, policy: RedactionPolicy) -> RawFeedback:
    """The redacted, normalized event data for ``item``; the same input (and key) always gives the same event.

    Every field that leaves ingest is listed, with what is done to it, in the README's redaction section.
    """
    regions = policy.phone_regions
    keyed = policy.pseudonyms.pseudonym
    text = redact(_clean(item.text), regions=regions)
    counts = Counter(text.counts)
    subject = None
    if item.subject:
        redacted = redact(_clean(item.subject), regions=regions)
        subject, counts = redacted.text, counts + redacted.counts
    author = item.author or AuthorIn()
    author_name = None
    if author.name:
        redacted = redact(author.name, regions=regions)
        author_name, counts = redacted.text, counts + redacted.counts
    customer, customer_counts = _customer(item.customer, policy)
    tags: list[str] = []
    if item.tags:
        redacted = redact_many(sorted(set(item.tags)), regions=regions)
        tags, counts = sorted(set(redacted.text.split("\n"))), counts + redacted.counts
    url = None
    if item.url:
        redacted = redact_url(item.url, regions=regions)
        url, counts = redacted.text, counts + redacted.counts
    counts += customer_counts
    rating = None
    if item.rating is not None:
        rating = Rating(
            kind=item.rating.kind, value=item.rating.value, scale=item.rating.scale or _DEFAULT_SCALE[item.rating.kind]
        )
    return RawFeedback(
        feedback_id=feedback_id_for(item.source, item.external_id),
        source=item.source,
        external_id=keyed("external_id", f"{item.source}\x1f{item.external_id}"),
        channel=item.channel,
        text=text.text,
        subject=subject,
        author=Author(
            id=keyed("author", f"{item.source}\x1f{author.id}") if author.id else None,
            name=author_name,
            email_hash=policy.pseudonyms.email_hash(author.email) if author.email else None,
        ),
        customer=customer,
        rating=rating,
        tags=tags,
        url=url,
        language=item.language,
        created_at=item.created_at or received_at,
        received_at=received_at,
        redactions=dict(sorted(counts.items())),
        conversation=Conversation(source=item.conversation.source, id=item.conversation.id)
        if item.conversation is not None else None,
    )


def _customer(customer: Customer | None, policy: RedactionPolicy) -> tuple[Customer, Counter[str]]:
    """The customer fit to publish: the account id and routing fields kept, the name redacted as text,
    other extras redacted or dropped (see ``RAW_CUSTOMER_FIELDS``)."""
    counts: Counter[str] = Counter()
    if customer is None:
        return Customer(), counts
    fields: dict[str, Any] = {}
    for key, value in customer.model_dump(exclude_none=True).items():
        if key in RAW_CUSTOMER_FIELDS and isinstance(value, str | int | float | bool):
            fields[key] = value
        elif isinstance(value, str):
            redacted = redact(value, regions=policy.phone_regions)
            fields[key], counts = redacted.text, counts + redacted.counts
        elif isinstance(value, int | float | bool):
            fields[key] = value
    return Customer.model_validate(fields), counts


def _clean(text: str) -> str:
    lines = (_WS.sub(" ", line).strip() for line in text.replace("\x00", "").splitlines())
    return "\n".join(line for line in lines if line) or text.strip()
