"""What notification reads: ``feedback.classified.v1`` and ``insights.v1``, each routed to deliveries, and
``privacy.v1`` (erasure requests: :func:`notification.service.erasure.apply_erasure` blanks the deliveries'
payloads).

Each handler runs inside the runtime's unit of work (one transaction per batch, each event in a savepoint):
it queues the pending deliveries of every matching rule, each naming the event's ``subject`` (the feedback or
insight id), which commit together with the event's processed mark. It then nudges the delivery worker, which
sends them once the batch is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, PRIVACY, Envelope, ErasureRequest
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import PoisonMessage, Subscription
from notification.config import NotificationSettings
from notification.domain.fields import EventKind
from notification.service.erasure import apply_erasure, is_erased
from notification.service.routing import NoiseSettings, route_event

__all__ = ["subscriptions"]


def subscriptions(settings: NotificationSettings, wake: Callable[[], None] = lambda: None) -> list[Subscription]:
    """The subscriptions of the notification consumer; ``wake`` is called after deliveries were queued."""

    noise = NoiseSettings(episode_gap_s=settings.episode_gap_s, digest_grace_s=settings.digest_grace_s)

    def handler(kind: EventKind) -> Callable[[UnitOfWork, Envelope[Any]], Any]:
        async def handle(uow: UnitOfWork, event: Envelope[Any]) -> None:
            if kind == "feedback" and await is_erased(uow, event.subject):
                return  # erased (privacy.v1) before this event got here: never queue its text
            data = event.data.model_dump(mode="json", by_alias=True)
            if await route_event(uow, kind, event.id, data, schedule=settings.schedule, jitter=settings.retry_jitter,
                                 noise=noise, subject=event.subject):
                wake()

        handle.__name__ = f"handle_{kind}"
        return handle

    async def handle_privacy(uow: UnitOfWork, event: Envelope[Any]) -> None:
        if not isinstance(event.data, ErasureRequest):
            raise PoisonMessage(f"expected an ErasureRequest payload, got {type(event.data).__name__}")
        await apply_erasure(uow, event.data)

    return [Subscription(FEEDBACK_CLASSIFIED, handler("feedback")), Subscription(INSIGHTS, handler("insight")),
            Subscription(PRIVACY, handle_privacy)]
