"""Erasure requests (``privacy.v1``): blank what deliveries say about erased items; the delivery log rows stay."""

from __future__ import annotations

from datetime import UTC, datetime

from feedbackloop.contracts import ErasureRequest
from feedbackloop.db import UnitOfWork
from feedbackloop.db.erasures import erased_among, is_applied, record_applied
from feedbackloop.logs import get_logger
from notification.domain.erasure import ERASED_ERROR, blanked_payload, digest_without, insight_after_erasure
from notification.domain.lifecycle import DeliveryState, DeliveryStatus, given_up
from notification.store.models import erasure_tables
from notification.store.repository import ErasureRepository

__all__ = ["apply_erasure", "is_erased"]

log = get_logger(__name__)


async def apply_erasure(uow: UnitOfWork, request: ErasureRequest) -> int | None:
    """Blank what notification's deliveries say about the request's items; the delivery log rows stay.

    A feedback delivery about an erased item keeps its rule, channel, times and outcome, and loses the event's
    data; one not sent yet (pending, paused) never will be (``failed``, with :data:`ERASED_ERROR`). An insight
    delivery citing an erased item loses it from its evidence (an ``urgent_item`` one, whose title names the
    customer, is blanked), and a digest already filled loses the erased lines. Records the request and a tombstone
    per item, so a classified event arriving later queues nothing. A request applied before changes nothing and
    returns None; otherwise how many deliveries were changed.
    """
    request_id = str(request.request_id)
    if await is_applied(uow.session, erasure_tables, request_id):
        return None
    erased = {str(f) for f in request.feedback_ids}
    repo = ErasureRepository(uow.session)
    changed = 0
    blanked_events: set[str] = set()
    for delivery in await repo.of_subjects(sorted(erased)):
        delivery.payload = blanked_payload(delivery.payload, request_id)
        delivery.trace_context = None
        before = DeliveryState(DeliveryStatus(delivery.status), delivery.attempts)
        after = given_up(before)
        if after != before:
            delivery.status, delivery.next_attempt_at, delivery.last_error = after.status, None, ERASED_ERROR
        blanked_events.add(delivery.event_id)
        changed += 1
    for delivery in await repo.of_kind("insight"):
        pruned = insight_after_erasure(delivery.payload, erased, request_id)
        if pruned is not None:
            delivery.payload = pruned
            if pruned.get("erased"):
                blanked_events.add(delivery.event_id)
            changed += 1
    if blanked_events:
        for digest in await repo.of_kind("digest"):
            without = digest_without(digest.payload, blanked_events)
            if without is not None:
                digest.payload = without
                changed += 1
    await uow.session.flush()
    await record_applied(uow.session, erasure_tables, request_id, customer_id=request.customer_id,
                         feedback_ids=sorted(erased), at=datetime.now(UTC))
    log.info("erasure applied", request_id=request_id, deliveries=changed)
    return changed


async def is_erased(uow: UnitOfWork, feedback_id: str | None) -> bool:
    """Whether an erasure request erased the item ``feedback_id`` here before."""
    return feedback_id is not None and bool(await erased_among(uow.session, erasure_tables, [feedback_id]))
