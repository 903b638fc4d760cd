"""What classification reads: ``feedback.raw.v1``, each event handed to :func:`handle_raw` via the runtime.

The runtime gives the handler one unit of work per batch (each event in a savepoint, its id recorded as
processed, duplicates skipped before the handler is called); the handler labels the item and raises the
``feedback.classified.v1`` event through the outbox. It never commits and never talks to Kafka.
"""

from __future__ import annotations

from typing import Any

from classification.service import LiveState, classify_item
from feedbackloop.contracts import FEEDBACK_RAW, Envelope, RawFeedback
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import EventHandler, PoisonMessage, Subscription

__all__ = ["make_handler", "subscriptions"]


def make_handler(live: LiveState) -> EventHandler:
    """Labels each item with the classifier in force; waits until the store's state is restored (``live.ready``)."""
    async def handle_raw(uow: UnitOfWork, event: Envelope[Any]) -> None:
        raw = event.data
        if not isinstance(raw, RawFeedback):  # decode() validated it against the topic; anything else is a bug
            raise PoisonMessage(f"expected a RawFeedback payload, got {type(raw).__name__}")
        await live.ready.wait()
        await classify_item(uow, raw, live)

    return handle_raw


def subscriptions(live: LiveState) -> list[Subscription]:
    """The topics classification consumes, each with its handler."""
    return [Subscription(FEEDBACK_RAW, make_handler(live))]
