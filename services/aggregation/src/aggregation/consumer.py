"""What aggregation consumes: ``feedback.classified.v1`` (:func:`apply_classified`) and ``releases.v1``
(:func:`apply_release`), in one consumer group."""

from __future__ import annotations

from typing import Any

from aggregation.service import apply_classified, apply_release
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, RELEASES, Envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import Subscription

__all__ = ["SUBSCRIPTIONS", "handle_classified", "handle_release"]


async def handle_classified(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Apply one classified item; a duplicate or late revision is a no-op, never an error."""
    await apply_classified(uow, event)


async def handle_release(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Store one release or incident marker; the same release id again replaces it."""
    await apply_release(uow, event)


SUBSCRIPTIONS = [Subscription(FEEDBACK_CLASSIFIED, handle_classified), Subscription(RELEASES, handle_release)]
