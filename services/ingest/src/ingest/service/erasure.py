"""Erasure use cases: erase one customer's or one author's items and announce it (``privacy.v1``); its status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from feedbackloop.contracts import FEEDBACK_RAW, PRIVACY, ErasureRequest
from feedbackloop.db import UnitOfWorkFactory
from ingest.domain.erasure import ErasureTarget, erased_item, erasure_event_id
from ingest.store.models import Erasure
from ingest.store.repository import ErasureRepository

__all__ = ["ErasureStatus", "erase", "erasure_status"]


async def erase(
    uow_factory: UnitOfWorkFactory, target: ErasureTarget, *, reason: str, requested_by: str,
    now: datetime | None = None,
) -> ErasureRequest:
    """Erase ``target``'s items in ingest's store and raise the ``privacy.v1`` event, in ONE transaction.

    Each matching item keeps only its id, source, channel and times (see ``erased_item``); its raw copy and
    content key go, and so do its ``feedback.raw.v1`` outbox rows (a replay must not re-publish the text; one
    not yet published never will be). The request is recorded with the ids it erased, and its event goes to the
    outbox in the same commit: the erasure and its announcement are stored together or not at all. Items an
    earlier request erased carry no names any more and are not found again. Any exception rolls everything back
    and is raised.
    """
    at = now or datetime.now(UTC)
    request_id = uuid.uuid4()
    async with uow_factory() as uow:
        repo = ErasureRepository(uow.session)
        ids = await repo.matching_ids(target)
        found = await repo.items(ids)
        await repo.erase_items({fid: erased_item(item, request_id, at) for fid, item in found.items()})
        await repo.forget_events(uow_factory.tables.outbox, FEEDBACK_RAW.name, ids)
        event = ErasureRequest(request_id=request_id, customer_id=target.customer_id,
                               author_email_hash=target.author_email_hash,
                               feedback_ids=[uuid.UUID(fid) for fid in ids], requested_at=at, reason=reason)
        event_id = erasure_event_id(request_id)
        repo.add(Erasure(request_id=str(request_id), requested_at=at, requested_by=requested_by,
                         customer_id=target.customer_id, author_email_hash=target.author_email_hash,
                         reason=reason, feedback_ids=ids, event_id=event_id))
        uow.publish(PRIVACY, event, event_id=event_id)
        await uow.commit()
    return event


@dataclass(frozen=True)
class ErasureStatus:
    """A recorded erasure request, and whether its ``privacy.v1`` event has reached the broker."""

    request_id: uuid.UUID
    requested_at: datetime
    requested_by: str
    customer_id: str | None
    author_email_hash: str | None
    reason: str
    feedback_ids: list[uuid.UUID]
    published_at: datetime | None
    published: bool


async def erasure_status(uow_factory: UnitOfWorkFactory, request_id: uuid.UUID) -> ErasureStatus | None:
    """The request ``request_id``, None when there is none. An event no longer in the outbox (pruned after its
    retention) was published long ago."""
    async with uow_factory() as uow:
        repo = ErasureRepository(uow.session)
        found = await repo.get(str(request_id))
        if found is None:
            return None
        queued, sent_at = await repo.event_sent_at(uow_factory.tables.outbox, found.event_id)
        return ErasureStatus(
            request_id=uuid.UUID(found.request_id), requested_at=found.requested_at,
            requested_by=found.requested_by, customer_id=found.customer_id,
            author_email_hash=found.author_email_hash, reason=found.reason,
            feedback_ids=[uuid.UUID(f) for f in found.feedback_ids], published_at=sent_at,
            published=sent_at is not None or not queued,
        )
