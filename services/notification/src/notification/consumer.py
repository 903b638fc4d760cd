"""What notification reads: ``feedback.classified.v1`` and ``insights.v1``, each routed to deliveries, and
``privacy.v1`` (erasure requests: :func:`notification.service.erasure.apply_erasure` blanks the deliveries'
payloads).

The runtime hands each batch to ``prepare`` first (the events only: nothing is read or decided there), then runs
each event's handler inside one unit of work (one transaction per batch; each event in a savepoint once one failed).
The handlers route the batch's events together (:mod:`notification.service.routing_batch`): the first one reads the
rules and the state every event of the batch needs, each event is decided on its own, and the deliveries they queue
— each naming the event's ``subject`` (the feedback or insight id) — are written when the batch commits, together
with the events' processed marks. The delivery worker is woken once that commit is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, PRIVACY, Envelope, ErasureRequest
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import PoisonMessage, Subscription
from notification.config import NotificationSettings
from notification.domain.fields import EventKind
from notification.domain.routing import subject_of
from notification.service.erasure import apply_erasure
from notification.service.routing_batch import BatchEvent, NoiseSettings, routing_batch, start_batch

__all__ = ["subscriptions"]


def subscriptions(settings: NotificationSettings, wake: Callable[[], None] = lambda: None) -> list[Subscription]:
    """The subscriptions of the notification consumer; ``wake`` is called once a batch that queued deliveries
    committed."""

    noise = NoiseSettings(episode_gap_s=settings.episode_gap_s, digest_grace_s=settings.digest_grace_s)
    upcoming: dict[str, BatchEvent] = {}  # the batch's events, from prepare until the first handler takes them

    def prepare(kind: EventKind) -> Callable[[Sequence[Envelope[Any]]], Awaitable[None]]:
        async def prepare_batch(events: Sequence[Envelope[Any]]) -> None:
            upcoming.update((e.id, _batch_event(kind, e)) for e in events)

        return prepare_batch

    def handler(kind: EventKind) -> Callable[[UnitOfWork, Envelope[Any]], Any]:
        async def handle(uow: UnitOfWork, event: Envelope[Any]) -> None:
            batch = await start_batch(uow, schedule=settings.schedule, jitter=settings.retry_jitter, noise=noise,
                                      wake=wake)
            if upcoming:
                batch.expect(list(upcoming.values()))
                upcoming.clear()
            await batch.handle(uow.session, batch.expected(event.id) or _batch_event(kind, event))

        handle.__name__ = f"handle_{kind}"
        return handle

    async def handle_privacy(uow: UnitOfWork, event: Envelope[Any]) -> None:
        if not isinstance(event.data, ErasureRequest):
            raise PoisonMessage(f"expected an ErasureRequest payload, got {type(event.data).__name__}")
        batch = routing_batch(uow)
        if batch is not None:  # what the batch queued so far must be in the store for the erasure to blank it
            await batch.write(uow.session)
            batch.forget_erasures()
        await apply_erasure(uow, event.data)

    return [Subscription(FEEDBACK_CLASSIFIED, handler("feedback"), prepare("feedback")),
            Subscription(INSIGHTS, handler("insight"), prepare("insight")),
            Subscription(PRIVACY, handle_privacy)]


def _batch_event(kind: EventKind, event: Envelope[Any]) -> BatchEvent:
    data = event.data.model_dump(mode="json", by_alias=True)
    subject = subject_of(kind, data) if event.subject is None else event.subject[:64]
    return BatchEvent(kind, event.id, data, subject, event.subject)
