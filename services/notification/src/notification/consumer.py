"""What notification reads: ``feedback.classified.v1`` and ``insights.v1``, each routed to deliveries.

Each handler runs inside the runtime's unit of work (one transaction per batch, each event in a savepoint):
it queues the pending deliveries of every matching rule, each naming the event's ``subject`` (the feedback or
insight id), which commit together with the event's processed mark. It then nudges the delivery worker, which
sends them once the batch is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, Envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import Subscription
from notification.config import NotificationSettings
from notification.domain.fields import EventKind
from notification.service import NoiseSettings, route_event

__all__ = ["subscriptions"]


def subscriptions(settings: NotificationSettings, wake: Callable[[], None] = lambda: None) -> list[Subscription]:
    """The two subscriptions of the notification consumer; ``wake`` is called after deliveries were queued."""

    noise = NoiseSettings(episode_gap_s=settings.episode_gap_s, digest_grace_s=settings.digest_grace_s)

    def handler(kind: EventKind) -> Callable[[UnitOfWork, Envelope[Any]], Any]:
        async def handle(uow: UnitOfWork, event: Envelope[Any]) -> None:
            data = event.data.model_dump(mode="json", by_alias=True)
            if await route_event(uow, kind, event.id, data, schedule=settings.schedule, jitter=settings.retry_jitter,
                                 noise=noise, subject=event.subject):
                wake()

        handle.__name__ = f"handle_{kind}"
        return handle

    return [Subscription(FEEDBACK_CLASSIFIED, handler("feedback")), Subscription(INSIGHTS, handler("insight"))]
