"""The CloudEvents 1.0 structured-mode envelope every topic carries, and its wire encoding.

A Kafka record's value is the UTF-8 JSON of the whole envelope; its key is the envelope's
``subject`` (the feedback or insight id); its headers carry ``content-type`` and the W3C
``traceparent``. Any Kafka client and any CloudEvents tool can read it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedbackloop.contracts.topics import Topic

__all__ = ["CONTENT_TYPE", "DecodeError", "Envelope", "decode", "encode", "new_envelope"]

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"

D = TypeVar("D", bound=BaseModel)


class Envelope(BaseModel, Generic[D]):
    model_config = ConfigDict(extra="allow")

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    time: datetime
    subject: str
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    data: D
    # Not part of the JSON: where the record came from, set by decode().
    traceparent: str | None = Field(default=None, exclude=True)


class DecodeError(ValueError):
    """The record is not a valid event of its topic: not JSON, not an envelope, or ``data`` breaks the schema."""


def new_envelope(topic: Topic, data: BaseModel, *, source: str, event_id: str | None = None) -> Envelope[Any]:
    subject = str(getattr(data, topic.key_field))
    return Envelope[Any](
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=topic.event_type,
        time=datetime.now(UTC),
        subject=subject,
        dataschema=f"https://feedbackloop.dev/schemas/{topic.name}.json",
        data=data,
    )


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json(exclude_none=True, by_alias=True).encode()


def decode(topic: Topic, value: bytes | None, headers: dict[str, str] | None = None) -> Envelope[Any]:
    """Parse and validate a record of ``topic``; raises :class:`DecodeError` with the reason."""
    if value is None:
        raise DecodeError("record has no value (tombstone)")
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"value is not UTF-8 JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise DecodeError("value is not a JSON object")
    if raw.get("type") != topic.event_type:
        raise DecodeError(f"type is {raw.get('type')!r}, expected {topic.event_type!r}")
    try:
        envelope = Envelope[topic.model].model_validate(raw)  # type: ignore[name-defined]
    except ValidationError as exc:
        raise DecodeError(f"schema violation: {_summary(exc)}") from exc
    envelope.traceparent = (headers or {}).get("traceparent")
    return envelope


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
