"""The one interface every channel is sent through: a :class:`Sender` turns a :class:`Message` into an outcome.

A sender makes one attempt and reports what it came to; it never decides what happens next (the delivery state
machine, :mod:`notification.domain.lifecycle`, does) and never raises for a failure of the target: a refused
connection, an HTTP or SMTP error, a timeout are each a :class:`SendOutcome`. An exception out of ``send`` means
the request could not even be built (a bad stored URL or secret); the worker records that as a failed attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from notification.domain.lifecycle import Outcome, OutcomeKind

__all__ = ["ERROR_CHARS", "Message", "SendOutcome", "Sender"]

#: Longest error text kept from a target's answer.
ERROR_CHARS = 500


@dataclass(frozen=True)
class Message:
    """One attempt of one delivery: its id (the ``webhook-id`` / ``Message-ID``, a reply's marker), the stored
    payload, the channel's current settings (read from its rule at claim time, secret included), and which attempt
    this is (1 for the first)."""

    delivery_id: str
    payload: Mapping[str, Any]
    channel: Mapping[str, Any]
    attempt: int = 1


@dataclass
class SendOutcome:
    """What one attempt came to: a status (HTTP or SMTP code; ``None`` when nothing answered), an error when it
    failed, a requested ``Retry-After``, whether a failure is worth trying again, its duration, the trace and
    span ids of its span (for the log line), and for a success what it made (``detail``: the tracker issue
    created, the conversation replied on; kept as the delivery's ``result``)."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None
    retryable: bool = False
    took: float = 0.0
    log_ids: dict[str, str | None] = field(default_factory=dict)
    detail: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status is not None

    def outcome(self) -> Outcome:
        """The outcome as the delivery state machine reads it."""
        if self.succeeded:
            return Outcome(OutcomeKind.SENT)
        if self.retryable:
            return Outcome(OutcomeKind.RETRYABLE, self.retry_after)
        return Outcome(OutcomeKind.PERMANENT)


class Sender(Protocol):
    """Sends one message over one kind of channel (webhook, Slack, email, Zendesk, Intercom, tracker)."""

    async def send(self, message: Message) -> SendOutcome:
        """One attempt; a failure of the target is an outcome, never an exception."""
        ...
