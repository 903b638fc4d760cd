"""The generic feedback API's input, and its normalization into a ``feedback.raw.v1`` item. Pure."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from feedbackloop.contracts import Author, Customer, Rating, RawFeedback, feedback_id_for
from feedbackloop.contracts.events import Channel
from ingest.domain.redact import redact

__all__ = ["MAX_TEXT_CHARS", "AuthorIn", "FeedbackIn", "normalize"]

MAX_TEXT_CHARS = 100_000
_WS = re.compile(r"[ \t\r\f\v]+")


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


def normalize(item: FeedbackIn, received_at: datetime) -> RawFeedback:
    """The redacted, normalized event data for ``item``; the same input always gives the same id."""
    text = redact(_clean(item.text))
    subject = redact(_clean(item.subject)) if item.subject else None
    counts = text.counts + (subject.counts if subject else text.counts.__class__())
    author = item.author or AuthorIn()
    rating = None
    if item.rating is not None:
        rating = Rating(
            kind=item.rating.kind, value=item.rating.value, scale=item.rating.scale or _DEFAULT_SCALE[item.rating.kind]
        )
    return RawFeedback(
        feedback_id=feedback_id_for(item.source, item.external_id),
        source=item.source,
        external_id=item.external_id,
        channel=item.channel,
        text=text.text,
        subject=subject.text if subject else None,
        author=Author(
            id=author.id,
            name=author.name,
            email_hash=hashlib.sha256(author.email.strip().lower().encode()).hexdigest() if author.email else None,
        ),
        customer=item.customer or Customer(),
        rating=rating,
        tags=sorted(set(item.tags)),
        url=item.url,
        language=item.language,
        created_at=item.created_at or received_at,
        received_at=received_at,
        redactions=dict(sorted(counts.items())),
    )


def _clean(text: str) -> str:
    lines = (_WS.sub(" ", line).strip() for line in text.replace("\x00", "").splitlines())
    return "\n".join(line for line in lines if line) or text.strip()
