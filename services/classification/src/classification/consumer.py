"""What classification reads: ``feedback.raw.v1`` (labelled by :class:`RawConsumer`) and ``privacy.v1``
(:func:`handle_privacy`: erasure requests).

A batch is handled as a batch. Before its transaction — while the batch before it is handled (``prepare_ahead``:
the encoder's thread works while the event loop writes) — :meth:`RawConsumer.prepare` labels every item of the
batch in one pass off the event loop (:func:`~classification.service.read_batch`: all texts in one encoder call,
cached by their word pieces, then each item's labels). In the transaction the runtime calls the handler once per
event (duplicates skipped before the handler is called); the first one reads what the store knows of the whole
batch in two statements (:class:`~classification.service.BatchLookup`), and each stages its row and raises its
event (:class:`~classification.service.BatchWrites`). :meth:`RawConsumer.finish` then writes the batch in the same
transaction — one upsert of all rows, one of the clusters touched — and the runtime commits it with the processed
event ids and the outbox rows (one insert each). If that write fails (not transiently), the runtime handles the
batch again one event per transaction, so one bad item is dead-lettered and the rest land. An event whose labels
were not prepared (the classifier changed in between, or the preparation failed) is labelled alone, as before.
The handlers never commit and never talk to Kafka.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from classification.service import (
    BatchLookup,
    BatchWrites,
    LiveState,
    Reading,
    apply_erasure,
    classify_item,
    read_batch,
)
from feedbackloop.contracts import FEEDBACK_RAW, PRIVACY, Envelope, ErasureRequest, RawFeedback
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import EventHandler, PoisonMessage, Subscription

__all__ = ["RawConsumer", "handle_privacy", "make_privacy_handler", "subscriptions"]


@dataclass(frozen=True)
class _Prepared:
    """One prepared batch: each event's reading, the batch's items, and the classifier that read them."""

    readings: dict[str, Reading]
    feedback_ids: list[str]
    classifier: object


class RawConsumer:
    """``feedback.raw.v1``: :meth:`prepare` labels a batch ahead of its transaction, :meth:`handle` stores each item.

    Holds the last two prepared batches (the runtime prepares the next batch while it handles one: ``prepare_ahead``)
    and per unit of work the batch's :class:`BatchLookup` (gone with the unit of work: a batch retried after a
    transient failure reads the store again).
    """

    def __init__(self, live: LiveState) -> None:
        self.live = live
        self._prepared: deque[_Prepared] = deque(maxlen=2)
        self._lookups: weakref.WeakKeyDictionary[UnitOfWork, BatchLookup] = weakref.WeakKeyDictionary()
        self._writes: weakref.WeakKeyDictionary[UnitOfWork, BatchWrites] = weakref.WeakKeyDictionary()

    async def prepare(self, events: Sequence[Envelope[Any]]) -> None:
        """Label the batch's items with the classifier in force (waits until the store's state is restored)."""
        raws = [e for e in events if isinstance(e.data, RawFeedback)]
        if not raws:
            return
        await self.live.ready.wait()
        classifier = self.live.classifier
        readings = await asyncio.to_thread(read_batch, classifier, [e.data for e in raws])
        self._prepared.append(_Prepared({e.id: r for e, r in zip(raws, readings, strict=True)},
                                        [str(e.data.feedback_id) for e in raws], classifier))

    async def handle(self, uow: UnitOfWork, event: Envelope[Any]) -> None:
        """Label the item with the classifier in force (prepared, or alone), store it, raise its event."""
        raw = event.data
        if not isinstance(raw, RawFeedback):  # decode() validated it against the topic; anything else is a bug
            raise PoisonMessage(f"expected a RawFeedback payload, got {type(raw).__name__}")
        await self.live.ready.wait()
        prepared = self._batch_of(event.id)
        reading = prepared.readings[event.id] if prepared and prepared.classifier is self.live.classifier else None
        staged = self._writes.setdefault(uow, BatchWrites())
        lookup = await self._lookup(uow, prepared.feedback_ids if prepared else [str(raw.feedback_id)])
        await classify_item(uow, raw, self.live, reading=reading, lookup=lookup, staged=staged)

    def _batch_of(self, event_id: str) -> _Prepared | None:
        return next((p for p in reversed(self._prepared) if event_id in p.readings), None)

    async def finish(self, uow: UnitOfWork) -> None:
        """Write the batch's staged rows, clusters and events (the runtime calls it once, before the commit)."""
        staged = self._writes.pop(uow, None)
        self._lookups.pop(uow, None)
        if staged is not None:
            await staged.write(uow)

    async def _lookup(self, uow: UnitOfWork, feedback_ids: list[str]) -> BatchLookup:
        """The unit of work's lookup, read on its first event for ``feedback_ids`` (that event's batch)."""
        lookup = self._lookups.get(uow)
        if lookup is None:
            lookup = self._lookups[uow] = await BatchLookup.load(uow, feedback_ids)
        return lookup

    def forget(self, uow: UnitOfWork) -> None:
        """Drop the batch's lookup of ``uow`` (an erasure in the same unit of work makes it stale)."""
        self._lookups.pop(uow, None)


def make_privacy_handler(raw: RawConsumer) -> EventHandler:
    """:func:`handle_privacy`, dropping the raw consumer's batch lookup first (it may now name erased items)."""
    async def handle_erasure(uow: UnitOfWork, event: Envelope[Any]) -> None:
        raw.forget(uow)
        await handle_privacy(uow, event)

    return handle_erasure


async def handle_privacy(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Erase what classification holds of the request's items (``privacy.v1``); a request seen before is a no-op."""
    if not isinstance(event.data, ErasureRequest):
        raise PoisonMessage(f"expected an ErasureRequest payload, got {type(event.data).__name__}")
    await apply_erasure(uow, event.data)


def subscriptions(live: LiveState) -> list[Subscription]:
    """The topics classification consumes, each with its handler and batch preparation."""
    raw = RawConsumer(live)
    return [Subscription(FEEDBACK_RAW, raw.handle, raw.prepare, raw.finish, prepare_ahead=True),
            Subscription(PRIVACY, make_privacy_handler(raw))]
