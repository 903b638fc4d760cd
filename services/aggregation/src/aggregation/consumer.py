"""What aggregation consumes: ``feedback.classified.v1`` (:func:`apply_classified`), ``releases.v1``
(:func:`apply_release`) and ``privacy.v1`` (:func:`apply_erasure`), in one consumer group."""

from __future__ import annotations

from typing import Any

from aggregation.service import apply_classified, apply_erasure, apply_release
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, PRIVACY, RELEASES, Envelope, ErasureRequest
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import PoisonMessage, Subscription

__all__ = ["SUBSCRIPTIONS", "handle_classified", "handle_privacy", "handle_release"]


async def handle_classified(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Apply one classified item; a duplicate or late revision is a no-op, never an error."""
    await apply_classified(uow, event)


async def handle_release(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Store one release or incident marker; the same release id again replaces it."""
    await apply_release(uow, event)


async def handle_privacy(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Erase the request's items and anonymise its customer; a request applied before is a no-op."""
    if not isinstance(event.data, ErasureRequest):
        raise PoisonMessage(f"expected an ErasureRequest payload, got {type(event.data).__name__}")
    await apply_erasure(uow, event.data)


SUBSCRIPTIONS = [Subscription(FEEDBACK_CLASSIFIED, handle_classified), Subscription(RELEASES, handle_release),
                 Subscription(PRIVACY, handle_privacy)]
