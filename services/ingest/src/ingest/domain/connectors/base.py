"""What every connector is made of: a delivery in, a verification, a mapping to ``FeedbackIn`` items and
``TrackerChange`` events out.

Pure: no I/O. A connector never stores anything; the service layer records nonces, items and tracker changes.

    VerificationFailed      the delivery did not prove it came from the vendor (HTTP 401); ``check`` names
                            which check failed: ``signature``, ``timestamp``, ``nonce``, ``token``…

A payload that verifies but cannot be mapped (an event type we do not take, an agent's reply, a
private note) is not an error: ``Outcome.ignored`` says why, and the endpoint answers 202 so the
vendor does not retry it forever. A verified delivery may carry items, tracker changes (GitHub, Jira and
Linear issues changing state, published on ``tracker.v1``), both, or neither.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from feedbackloop.contracts.events import Channel, IssueStatus, TrackerChange, TrackerName
from ingest.domain.feedback import FeedbackIn

__all__ = [
    "Connector",
    "ConnectorOptions",
    "Delivery",
    "Outcome",
    "VerificationFailed",
    "Verified",
    "as_datetime",
    "as_dict",
    "as_list",
    "b64",
    "build",
    "build_change",
    "dig",
    "hmac_digest",
    "require_fresh",
    "require_signature",
    "same",
    "text_of",
    "unix_header",
]


@dataclass(frozen=True)
class Delivery:
    """One HTTP request as received: lower-cased headers, the raw body, query parameters, arrival time."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class ConnectorOptions:
    """Per-source configuration besides the secret."""

    tolerance: timedelta = timedelta(minutes=5)
    github_repositories: frozenset[str] = frozenset()
    slack_channels: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Verified:
    """A verified delivery. ``nonce`` is a single-use token the caller must record (a second use is a replay)."""

    nonce: str | None = None


@dataclass
class Outcome:
    """What a verified payload becomes: items to store and tracker changes to publish (either, both), or the reason
    it is ignored; plus an optional reply body (a handshake)."""

    items: list[FeedbackIn] = field(default_factory=list)
    ignored: str | None = None
    reply: dict[str, Any] | None = None
    changes: list[TrackerChange] = field(default_factory=list)

    @classmethod
    def ignore(cls, reason: str) -> Outcome:
        return cls(ignored=reason)


class VerificationFailed(Exception):
    """The delivery failed ``check``; ``detail`` says what was wrong without naming or hinting at the secret."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(detail)
        self.check = check
        self.detail = detail


class Connector(Protocol):
    """One vendor. ``verify`` raises ``VerificationFailed``; ``map`` never raises on a JSON value. ``channel`` is
    that of its feedback items; None for a tracker that sends only issue changes (Jira, Linear)."""

    source: str

    @property
    def channel(self) -> Channel | None: ...

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified: ...

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome: ...


def hmac_digest(secret: str | bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def same(expected: str, given: str | None) -> bool:
    """Constant-time comparison of two signature strings; a missing one never matches."""
    return given is not None and hmac.compare_digest(expected.encode(), given.strip().encode())


def require_signature(expected: str, given: str | None, header: str) -> None:
    if given is None or not given.strip():
        raise VerificationFailed("signature", f"The `{header}` header is missing.")
    if not same(expected, given):
        raise VerificationFailed("signature", f"The `{header}` signature does not match the body.")


def require_fresh(sent_at: datetime, now: datetime, tolerance: timedelta, header: str) -> None:
    """The replay window: a timestamp more than ``tolerance`` from ``now`` (either way) fails ``timestamp``."""
    if abs(now - sent_at) > tolerance:
        raise VerificationFailed(
            "timestamp",
            f"The `{header}` timestamp is outside the {int(tolerance.total_seconds())} s replay window.",
        )


def unix_header(value: str | None, header: str) -> datetime:
    """A Unix timestamp header (seconds, or milliseconds when it is that large) as a datetime."""
    try:
        number = float(value or "")
    except ValueError:
        raise VerificationFailed("timestamp", f"The `{header}` header is missing or not a Unix time.") from None
    if number > 1e11:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        raise VerificationFailed("timestamp", f"The `{header}` header is not a valid time.") from None


def dig(value: Any, *path: str | int) -> Any:
    """``value[p0][p1]…`` or None when any step is missing or of the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(step)
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: a retyped field maps as a missing one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a JSON list, else an empty one."""
    return value if isinstance(value, list) else []


def text_of(value: Any) -> str | None:
    """A non-empty string, or None (numbers become their decimal form)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def as_datetime(value: Any) -> datetime | None:
    """ISO-8601 strings, Unix seconds (int, float or numeric string) → aware datetime; anything else → None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.replace(".", "", 1).isdigit()):
        try:
            number = float(value)
            return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def build(
    *,
    source: str,
    channel: Channel,
    external_id: Any,
    text: str | None,
    subject: str | None = None,
    author_id: Any = None,
    email: str | None = None,
    name: str | None = None,
    customer_id: Any = None,
    customer_name: str | None = None,
    rating: tuple[str, float, int] | None = None,
    url: str | None = None,
    created_at: datetime | None = None,
    tags: list[str] | None = None,
    language: str | None = None,
    conversation: Any = None,
) -> FeedbackIn | str:
    """A valid ``FeedbackIn``, or the reason there is none (no id, no text). Long fields are cut to their limits.
    ``conversation`` is the support tool's ticket or conversation id (under ``source``), left out when it is not
    one (blank, spaced, too long): the item is taken without it."""
    ext = text_of(external_id)
    if ext is None:
        return "the payload carries no item id"
    body = (text or "").strip() or (subject or "").strip()
    if not body:
        return "the item has no customer text"
    data: dict[str, Any] = {
        "source": source,
        "channel": channel,
        "external_id": ext[:256],
        "text": body[:100_000],
        "subject": subject.strip()[:1000] if subject and subject.strip() and subject.strip() != body else None,
        "url": url[:2048] if url else None,
        "created_at": created_at,
        "tags": sorted({t[:100] for t in tags or [] if isinstance(t, str) and t})[:50],
    }
    author = {
        "id": (text_of(author_id) or "")[:256] or None,
        "email": _email(email),
        "name": (name or "")[:256] or None,
    }
    if any(author.values()):
        data["author"] = author
    customer = {"id": text_of(customer_id), "name": customer_name or None}
    if any(customer.values()):
        data["customer"] = customer
    if rating is not None:
        data["rating"] = {"kind": rating[0], "value": rating[1], "scale": rating[2]}
    if language and 2 <= len(language.split("-")[0]) <= 3:
        data["language"] = language.split("-")[0].lower()
    conversation_id = text_of(conversation)
    if conversation_id is not None and _CONVERSATION_ID.match(conversation_id):
        data["conversation"] = {"source": source, "id": conversation_id}
    try:
        return FeedbackIn.model_validate(data)
    except ValueError as exc:
        return f"the mapped item is invalid: {exc}".splitlines()[0]


_CONVERSATION_ID = re.compile(r"[^\s\x00-\x1f\x7f]{1,256}\Z")


def _email(value: Any) -> str | None:
    return value.strip()[:320] if isinstance(value, str) and "@" in value else None


def build_change(
    *,
    tracker: TrackerName,
    issue_key: str,
    status: IssueStatus,
    action: str,
    changed_at: datetime,
    url: Any = None,
    title: Any = None,
    previous_status: IssueStatus | None = None,
    resolution: Any = None,
) -> TrackerChange | str:
    """A valid ``TrackerChange``, or the reason there is none; free-text fields that are not strings are dropped
    and long ones cut."""
    try:
        return TrackerChange(
            issue_key=issue_key, tracker=tracker, status=status, previous_status=previous_status,
            action=action[:100], changed_at=changed_at,
            url=_cut(url, 2048), title=_cut(title, 1000), resolution=_cut(resolution, 200),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        return f"the issue change is invalid: {'.'.join(map(str, first['loc']))}: {first['msg']}"


def _cut(value: Any, limit: int) -> str | None:
    return value.strip()[:limit] or None if isinstance(value, str) else None
