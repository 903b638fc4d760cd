"""What classification reads: ``feedback.raw.v1`` (each event handed to :func:`handle_raw` via the runtime) and
``privacy.v1`` (:func:`handle_privacy`: erasure requests).

Before the batch's transaction, :func:`make_preparer` embeds every text of the batch in one model call (the encoder
runs batches of up to 64 texts instead of one at a time; the handler then finds each vector in the cache).
The runtime gives the handler one unit of work per batch (each event in a savepoint, its id recorded as
processed, duplicates skipped before the handler is called); the handler labels the item and raises the
``feedback.classified.v1`` event through the outbox. It never commits and never talks to Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from classification.model.classifier import PreviewItem
from classification.service import LiveState, apply_erasure, classify_item
from feedbackloop.contracts import FEEDBACK_RAW, PRIVACY, Envelope, ErasureRequest, RawFeedback
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import BatchPreparer, EventHandler, PoisonMessage, Subscription

__all__ = ["handle_privacy", "make_handler", "make_preparer", "subscriptions"]


def make_handler(live: LiveState) -> EventHandler:
    """Labels each item with the classifier in force; waits until the store's state is restored (``live.ready``)."""
    async def handle_raw(uow: UnitOfWork, event: Envelope[Any]) -> None:
        raw = event.data
        if not isinstance(raw, RawFeedback):  # decode() validated it against the topic; anything else is a bug
            raise PoisonMessage(f"expected a RawFeedback payload, got {type(raw).__name__}")
        await live.ready.wait()
        await classify_item(uow, raw, live)

    return handle_raw


def make_preparer(live: LiveState) -> BatchPreparer:
    """Embeds the batch's texts at once, off the event loop, with the classifier in force."""
    async def prepare(events: Sequence[Envelope[Any]]) -> None:
        items = [PreviewItem(e.data.text, e.data.subject) for e in events if isinstance(e.data, RawFeedback)]
        await asyncio.to_thread(live.classifier.warm, items)

    return prepare


async def handle_privacy(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Erase what classification holds of the request's items (``privacy.v1``); a request seen before is a no-op."""
    if not isinstance(event.data, ErasureRequest):
        raise PoisonMessage(f"expected an ErasureRequest payload, got {type(event.data).__name__}")
    await apply_erasure(uow, event.data)


def subscriptions(live: LiveState) -> list[Subscription]:
    """The topics classification consumes, each with its handler and batch preparation."""
    return [Subscription(FEEDBACK_RAW, make_handler(live), make_preparer(live)), Subscription(PRIVACY, handle_privacy)]
