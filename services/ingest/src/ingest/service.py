"""Ingest use cases: each opens a unit of work, calls the domain, stores the result with its outbox rows, commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError

from feedbackloop.contracts import FEEDBACK_RAW, RawFeedback
from feedbackloop.db import UnitOfWorkFactory
from ingest.domain.feedback import FeedbackIn, normalize
from ingest.domain.text import content_key
from ingest.store.models import FeedbackItem
from ingest.store.repository import FeedbackRepository

__all__ = ["NonceReplayed", "accept_feedback", "author_key", "raw_event_id"]


class NonceReplayed(Exception):
    """A single-use nonce was seen before: the delivery is a replay. Nothing was stored."""


def raw_event_id(feedback_id: uuid.UUID) -> str:
    """The event that first publishes an item has an id derived from it: a re-run can never publish it twice."""
    return str(uuid.uuid5(feedback_id, "feedback.raw.v1"))


def author_key(raw: RawFeedback) -> str | None:
    """Who said it, comparable across sources: the email hash, else the source's own author id, else None."""
    if raw.author.email_hash:
        return f"email:{raw.author.email_hash}"
    if raw.author.id:
        return f"{raw.source}:{raw.author.id}"
    return None


async def accept_feedback(
    uow_factory: UnitOfWorkFactory,
    items: Sequence[FeedbackIn],
    received_at: datetime | None = None,
    *,
    duplicate_window: timedelta = timedelta(hours=24),
    nonce: tuple[str, str] | None = None,
) -> list[uuid.UUID]:
    """Store new items and queue their events, all in one transaction; items already stored are left as they are.

    An item whose author said the same words (case, spacing and punctuation aside) within
    ``duplicate_window`` of an earlier item, from any source, is stored and published with
    ``duplicate_of`` = the earliest such item: linked, never dropped. ``nonce`` (source, value) is recorded
    in the same transaction; one seen before raises ``NonceReplayed`` and stores nothing.

    Returns every item's ``feedback_id`` in input order, new or not: a retried delivery gets the same answer.
    """
    received = received_at or datetime.now(UTC)
    normalized = [normalize(item, received) for item in items]
    try:
        async with uow_factory() as uow:
            repo = FeedbackRepository(uow.session)
            if nonce is not None and not await repo.add_nonce(nonce[0], nonce[1], received):
                raise NonceReplayed(nonce[1])
            known = await repo.existing_ids(str(raw.feedback_id) for raw in normalized)
            batch_keys: dict[str, tuple[datetime, uuid.UUID]] = {}
            for item, raw in zip(items, normalized, strict=True):
                key = str(raw.feedback_id)
                if key in known:
                    continue
                known.add(key)
                who = author_key(raw)
                ckey = content_key(who, raw.text) if who else None
                if ckey is not None and duplicate_window > timedelta(0):
                    earlier = batch_keys.get(ckey)
                    if earlier is not None and abs(earlier[0] - raw.created_at) <= duplicate_window:
                        original: uuid.UUID | None = earlier[1]
                    else:
                        found = await repo.earliest_with_content(
                            ckey, raw.created_at - duplicate_window, raw.created_at + duplicate_window
                        )
                        original = uuid.UUID(found) if found else None
                    if original is not None and original != raw.feedback_id:
                        raw = raw.model_copy(update={"duplicate_of": original})
                    else:
                        batch_keys.setdefault(ckey, (raw.created_at, raw.feedback_id))
                repo.add(
                    FeedbackItem(
                        feedback_id=key,
                        source=raw.source,
                        external_id=raw.external_id,
                        created_at=raw.created_at,
                        received_at=raw.received_at,
                        item=raw.model_dump(mode="json"),
                        raw=item.model_dump(mode="json"),
                        content_key=ckey,
                    )
                )
                uow.publish(FEEDBACK_RAW, raw, event_id=raw_event_id(raw.feedback_id))
            await uow.commit()
    except IntegrityError as exc:
        if nonce is not None and "webhook_nonces" in str(exc):
            raise NonceReplayed(nonce[1]) from exc
        raise
    return [raw.feedback_id for raw in normalized]
