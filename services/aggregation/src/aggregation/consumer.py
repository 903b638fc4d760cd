"""What aggregation consumes: ``feedback.classified.v1`` (:func:`~aggregation.service.apply_classified`),
``releases.v1`` (:func:`~aggregation.service.apply_release`) and ``privacy.v1``
(:func:`~aggregation.service.apply_erasure`), in one consumer group.

The runtime gives each handler the batch's unit of work (each event in a savepoint, its id recorded as
processed, duplicates skipped before the handler is called); handlers never commit and never talk to Kafka.
"""

from __future__ import annotations

from typing import Any

from aggregation.service import apply_classified, apply_erasure, apply_release
from aggregation.store.memo import StoreCache
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, PRIVACY, RELEASES, Envelope, ErasureRequest
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import EventHandler, PoisonMessage, Subscription

__all__ = ["handle_privacy", "handle_release", "make_classified_handler", "subscriptions"]


def make_classified_handler(cache: StoreCache) -> EventHandler:
    """Applies one classified item with the service's ``cache``; a duplicate or late revision is a no-op."""
    async def handle_classified(uow: UnitOfWork, event: Envelope[Any]) -> None:
        await apply_classified(uow, event, cache)

    return handle_classified


async def handle_release(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Store one release or incident marker; the same release id again replaces it."""
    await apply_release(uow, event)


async def handle_privacy(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Erase the request's items and anonymise its customer; a request applied before is a no-op."""
    if not isinstance(event.data, ErasureRequest):
        raise PoisonMessage(f"expected an ErasureRequest payload, got {type(event.data).__name__}")
    await apply_erasure(uow, event.data)


def subscriptions(cache: StoreCache | None = None) -> list[Subscription]:
    """The topics aggregation consumes, each with its handler; ``cache`` (one per service, made here when not
    given) keeps the apply path's statements and label keys between batches."""
    cache = cache if cache is not None else StoreCache()
    return [Subscription(FEEDBACK_CLASSIFIED, make_classified_handler(cache)), Subscription(RELEASES, handle_release),
            Subscription(PRIVACY, handle_privacy)]
