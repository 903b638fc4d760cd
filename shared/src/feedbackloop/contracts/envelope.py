"""The CloudEvents 1.0 envelope every topic carries, and its Kafka encoding (the CloudEvents Kafka protocol binding).

Producers write **structured mode**: a Kafka record's value is the UTF-8 JSON of the whole envelope; its key is
the envelope's ``subject`` (the feedback or insight id); its headers carry ``content-type:
application/cloudevents+json`` and the W3C ``traceparent``. Any Kafka client and any CloudEvents tool can read it.

:func:`decode` reads both content modes of the binding, so a record written by any CloudEvents SDK is accepted:

* **binary mode**, recognised by a ``ce_specversion`` header: the attributes are ``ce_<name>`` headers,
  ``datacontenttype`` is the ``content-type`` header, and the value is the ``data`` alone;
* **structured mode** otherwise: the value is the JSON envelope (``content-type`` ``application/cloudevents+json``,
  or absent, or, as the SDK's 1.x Kafka binding writes it, the ``datacontenttype``).

It is strict on what the specification requires: ``specversion`` present and ``"1.0"``; ``type`` the
topic's; ``id`` and ``source`` non-empty strings; attribute names of lower-case letters and digits; ``data`` a JSON
value with a JSON ``datacontenttype`` (absent, ``application/json`` or ``*/*+json``), never ``data_base64``.
``subject`` is optional in CloudEvents: where it is absent, the record key, else the payload's own key field,
stands in for it.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedbackloop.contracts.topics import Topic

__all__ = ["CONTENT_TYPE", "DecodeError", "Envelope", "decode", "encode", "is_json_media_type", "new_envelope"]

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"

D = TypeVar("D", bound=BaseModel)

#: CloudEvents attribute names: lower-case ASCII letters and digits (spec 1.0, "Attribute Naming Convention").
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]+")
_BINARY_PREFIX = "ce_"


class Envelope(BaseModel, Generic[D]):
    model_config = ConfigDict(extra="allow")

    specversion: str = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    time: datetime | None = None
    subject: str = Field(min_length=1)
    datacontenttype: str = "application/json"
    dataschema: str | None = None
    data: D
    # Not part of the JSON: where the record came from, set by decode().
    traceparent: str | None = Field(default=None, exclude=True)


class DecodeError(ValueError):
    """The record is not a valid event of its topic: not a CloudEvent, not JSON, or ``data`` breaks the schema."""


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
    """The structured-mode record value of ``envelope`` (the producers' mode)."""
    return envelope.model_dump_json(exclude_none=True, by_alias=True).encode()


def is_json_media_type(media_type: str) -> bool:
    """True for ``application/json`` and any ``<type>/<subtype>+json``, parameters (``; charset=…``) aside."""
    essence = media_type.split(";", 1)[0].strip().lower()
    return essence == "application/json" or (essence.count("/") == 1 and essence.endswith("+json"))


def decode(
    topic: Topic,
    value: bytes | None,
    headers: dict[str, str] | None = None,
    *,
    key: bytes | str | None = None,
) -> Envelope[Any]:
    """Parse and validate a record of ``topic`` in either content mode; raises :class:`DecodeError` with the reason.

    ``headers`` are the record's headers (names as sent, values as text); ``key`` is the record key, the
    ``subject`` of an event that has none.
    """
    headers = {name.lower(): text for name, text in (headers or {}).items()}
    if value is None:
        raise DecodeError("record has no value (tombstone)")
    binary = f"{_BINARY_PREFIX}specversion" in headers
    raw = _binary_attributes(value, headers) if binary else _structured(value, headers)
    _check_attributes(topic, raw)
    if raw.get("subject") is None:
        fallback = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if not fallback and isinstance(raw.get("data"), dict):
            fallback = raw["data"].get(topic.key_field)
        raw["subject"] = fallback
    try:
        envelope = Envelope[topic.model].model_validate(raw)  # type: ignore[name-defined]
    except ValidationError as exc:
        raise DecodeError(f"schema violation: {_summary(exc)}") from exc
    envelope.traceparent = headers.get("traceparent") or headers.get(f"{_BINARY_PREFIX}traceparent") or \
        _text_or_none(raw.get("traceparent"))
    return envelope


def _binary_attributes(value: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """Binary mode: the attributes from the ``ce_*`` headers and ``content-type``; the value is ``data``."""
    raw: dict[str, Any] = {
        name.removeprefix(_BINARY_PREFIX): text for name, text in headers.items() if name.startswith(_BINARY_PREFIX)
    }
    if "content-type" in headers:
        raw["datacontenttype"] = headers["content-type"]
    _check_data_content_type(raw)
    raw["data"] = _json(value, "value (binary-mode data)") if value else None
    return raw


def _structured(value: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """Structured mode: the value is the JSON envelope."""
    content_type = headers.get("content-type", "")
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence.startswith("application/cloudevents") and essence != "application/cloudevents+json":
        raise DecodeError(f"content-type is {content_type!r}: only the JSON event format "
                          "(application/cloudevents+json) is read; batch mode is not part of the Kafka binding")
    raw = _json(value, "value")
    if not isinstance(raw, dict):
        raise DecodeError("value is not a JSON object")
    if content_type and not essence.startswith("application/cloudevents") and "datacontenttype" not in raw:
        raw["datacontenttype"] = content_type  # the SDK 1.x Kafka binding moves datacontenttype to the header
    if "data_base64" in raw:
        raise DecodeError("data_base64 is set: this topic's data is JSON, carried in the data member")
    _check_data_content_type(raw)
    return raw


def _check_attributes(topic: Topic, raw: dict[str, Any]) -> None:
    """What CloudEvents 1.0 requires of the context attributes, and the topic's event type."""
    if raw.get("type") != topic.event_type:
        raise DecodeError(f"type is {raw.get('type')!r}, expected {topic.event_type!r}")
    if "specversion" not in raw:
        raise DecodeError("specversion is missing: not a CloudEvent")
    if raw["specversion"] != "1.0":
        raise DecodeError(f"specversion is {raw['specversion']!r}, expected '1.0'")
    for name in ("id", "source"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            raise DecodeError(f"{name} is {raw.get(name)!r}: CloudEvents requires a non-empty string")
    for name in ("subject", "time", "dataschema"):  # optional; JSON null is the same as absent
        if raw.get(name) is not None and (not isinstance(raw[name], str) or not raw[name]):
            raise DecodeError(f"{name} is {raw[name]!r}: when present, CloudEvents requires a non-empty string")
    bad = sorted(n for n in raw if n not in ("data", "data_base64") and not _ATTRIBUTE_NAME.fullmatch(n))
    if bad:
        raise DecodeError(f"attribute names {bad} break CloudEvents naming (lower-case letters and digits)")


def _check_data_content_type(raw: dict[str, Any]) -> None:
    content_type = raw.get("datacontenttype")
    if content_type is not None and (not isinstance(content_type, str) or not is_json_media_type(content_type)):
        raise DecodeError(f"datacontenttype is {content_type!r}: this topic's data is JSON (application/json)")


def _json(value: bytes, what: str) -> Any:
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"{what} is not UTF-8 JSON: {exc}") from exc


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
