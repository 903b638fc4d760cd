"""What aggregation consumes: ``feedback.classified.v1``, each event handed to :func:`apply_classified`."""

from __future__ import annotations

from typing import Any

from aggregation.service import apply_classified
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, Envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import Subscription

__all__ = ["SUBSCRIPTIONS", "handle_classified"]


async def handle_classified(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Apply one classified item; a duplicate or late revision is a no-op, never an error."""
    await apply_classified(uow, event)


SUBSCRIPTIONS = [Subscription(FEEDBACK_CLASSIFIED, handle_classified)]
