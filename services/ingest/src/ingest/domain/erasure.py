"""Erasure requests (GDPR-style): whom one names, and what an erased item keeps. Pure: no I/O.

A request names a customer (the account id, as published on ``feedback.raw.v1``) and/or an author by email
address. The address never leaves ingest and is never stored: it is turned into the same keyed pseudonym that
ingest publishes as ``author.email_hash``, and items are found by that.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ingest.domain.pseudonym import Pseudonymizer

__all__ = ["ErasureTarget", "NothingToErase", "erased_item", "erasure_event_id", "erasure_target", "matches"]


class NothingToErase(ValueError):
    """The request names neither a customer nor an author email: there is nothing to look for."""


@dataclass(frozen=True)
class ErasureTarget:
    """Whose items to erase: items of ``customer_id``, and items whose author has ``author_email_hash``."""

    customer_id: str | None = None
    author_email_hash: str | None = None


def erasure_target(customer_id: str | None, author_email: str | None, pseudonyms: Pseudonymizer) -> ErasureTarget:
    """The target of a request; blank values count as absent. Raises :class:`NothingToErase` when both are."""
    customer = (customer_id or "").strip() or None
    email = (author_email or "").strip() or None
    if customer is None and email is None:
        raise NothingToErase("give customer_id or author_email (or both)")
    return ErasureTarget(customer_id=customer, author_email_hash=pseudonyms.email_hash(email) if email else None)


def matches(item: dict[str, Any], target: ErasureTarget) -> bool:
    """Whether a stored ``feedback.raw.v1`` item belongs to the target (either of its names)."""
    customer = (item.get("customer") or {}).get("id")
    email_hash = (item.get("author") or {}).get("email_hash")
    return bool((target.customer_id is not None and customer == target.customer_id)
                or (target.author_email_hash is not None and email_hash == target.author_email_hash))


def erased_item(item: dict[str, Any], request_id: uuid.UUID, at: datetime) -> dict[str, Any]:
    """What ingest keeps of an erased item: its id, source, channel and times (so a redelivery of it is still
    recognised and not stored again), and which request erased it. Text, subject, author, customer, rating,
    tags and url are gone."""
    fields = ("feedback_id", "source", "channel", "created_at", "received_at")
    kept: dict[str, Any] = {k: item[k] for k in fields if k in item}
    return {**kept, "erased": {"request_id": str(request_id), "at": at.isoformat()}}


def erasure_event_id(request_id: uuid.UUID) -> str:
    """The ``privacy.v1`` event of a request has an id derived from it: replays never make it a new event."""
    return str(uuid.uuid5(request_id, "privacy.v1"))
