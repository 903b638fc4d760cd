"""What aggregation consumes: ``feedback.classified.v1`` (:func:`~aggregation.service.apply_classified`),
``releases.v1`` (:func:`~aggregation.service.apply_release`), ``privacy.v1``
(:func:`~aggregation.service.apply_erasure`) and ``tracker.v1`` (:func:`~aggregation.service.apply_tracker_change`:
the linked issues' states, closing their loops), in one consumer group.

The runtime gives each handler the batch's unit of work (each event in a savepoint once one failed, its id recorded
as processed, duplicates skipped before the handler is called); handlers never commit and never talk to Kafka. A
batch of classified items is handled as a batch: the ``prepare`` step tells the service's cache the batch's items
(read from the store at once by the first one applied), each handler stages its item, and the batch's writes,
merged, go to the store in the subscription's ``finish`` step, once for the batch and in its transaction
(``aggregation.store.staging``). Should that write fail, the runtime handles the batch again one event per
transaction, so the item that causes it is dead-lettered and the others land.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aggregation.service import (
    apply_classified,
    apply_erasure,
    apply_release,
    apply_tracker_change,
    flag_regressions,
    hint_batch,
    write_staged,
)
from aggregation.store.memo import StoreCache
from feedbackloop.contracts import (
    FEEDBACK_CLASSIFIED,
    PRIVACY,
    RELEASES,
    TRACKER,
    Envelope,
    ErasureRequest,
    TrackerChange,
)
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import BatchPreparer, EventHandler, PoisonMessage, Subscription

__all__ = ["handle_release", "make_batch_hint", "make_classified_handler", "make_privacy_handler",
           "make_release_handler", "make_tracker_handler", "subscriptions"]


def make_classified_handler(cache: StoreCache) -> EventHandler:
    """Applies one classified item with the service's ``cache``; a duplicate or late revision is a no-op."""
    async def handle_classified(uow: UnitOfWork, event: Envelope[Any]) -> None:
        await apply_classified(uow, event, cache)

    return handle_classified


async def handle_release(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Store one release or incident marker; the same release id again replaces it."""
    await apply_release(uow, event)


def make_release_handler(cache: StoreCache) -> EventHandler:
    """Store a release marker; one naming tracker issues closes their loops, over the items staged earlier in the
    batch too (written first)."""
    async def handle(uow: UnitOfWork, event: Envelope[Any]) -> None:
        if getattr(event.data, "issues", None):
            await write_staged(uow, cache)
        await apply_release(uow, event)

    return handle


def make_tracker_handler(cache: StoreCache) -> EventHandler:
    """A linked issue changed state: its links follow; a first ``done`` closes their loops (the items staged
    earlier in the batch are written first, so the loop counts them)."""
    async def handle(uow: UnitOfWork, event: Envelope[Any]) -> None:
        if not isinstance(event.data, TrackerChange):
            raise PoisonMessage(f"expected a TrackerChange payload, got {type(event.data).__name__}")
        await write_staged(uow, cache)
        await apply_tracker_change(uow, event.data)

    return handle


def make_batch_hint(cache: StoreCache) -> BatchPreparer:
    """The classified subscription's ``prepare``: tells ``cache`` the items of the batch (no store access)."""
    async def prepare(events: Sequence[Envelope[Any]]) -> None:
        hint_batch(cache, events)

    return prepare


def make_privacy_handler(cache: StoreCache) -> EventHandler:
    """Erase the request's items and anonymise its customer; a request applied before is a no-op. The items
    staged earlier in the batch are written first, so that the erasure finds them."""
    async def handle_privacy(uow: UnitOfWork, event: Envelope[Any]) -> None:
        if not isinstance(event.data, ErasureRequest):
            raise PoisonMessage(f"expected an ErasureRequest payload, got {type(event.data).__name__}")
        await write_staged(uow, cache)
        await apply_erasure(uow, event.data)

    return handle_privacy


def subscriptions(cache: StoreCache | None = None) -> list[Subscription]:
    """The topics aggregation consumes, each with its handler; ``cache`` (one per service, made here when not
    given) keeps the apply path's statements and label keys between batches."""
    cache = cache if cache is not None else StoreCache()
    async def finish(uow: UnitOfWork) -> None:
        await write_staged(uow, cache)
        await flag_regressions(uow)

    return [Subscription(FEEDBACK_CLASSIFIED, make_classified_handler(cache), prepare=make_batch_hint(cache),
                         finish=finish),
            Subscription(RELEASES, make_release_handler(cache)), Subscription(PRIVACY, make_privacy_handler(cache)),
            Subscription(TRACKER, make_tracker_handler(cache))]
