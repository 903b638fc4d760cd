"""An event to deliveries: load the facts, let :func:`notification.domain.routing.route` decide, queue the result.

:func:`route_event` routes one event and writes what it queues at once; the consumer routes the events of its
batch together (:class:`notification.service.routing_batch.RoutingBatch`: one set of reads, the same decision per
event, the writes at the batch's commit). Either runs inside the caller's unit of work and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from feedbackloop.db import UnitOfWork
from notification.domain.fields import EventKind
from notification.domain.routing import subject_of
from notification.service.routing_batch import (
    DELIVERIES_HELD,
    DELIVERIES_QUEUED,
    EPISODES_SUPPRESSED,
    EVENTS_UNMATCHED,
    BatchEvent,
    NoiseSettings,
    RoutingBatch,
)

__all__ = ["DELIVERIES_HELD", "DELIVERIES_QUEUED", "EPISODES_SUPPRESSED", "EVENTS_UNMATCHED", "NoiseSettings",
           "route_event"]


async def route_event(uow: UnitOfWork, event_kind: EventKind, event_id: str, data: Mapping[str, Any], *,
                      schedule: Sequence[float], jitter: float = 0.1, noise: NoiseSettings = NoiseSettings(),
                      now: datetime | None = None, subject: str | None = None) -> int:
    """Queue the deliveries of each enabled rule the event matches (:func:`notification.domain.routing.route`
    decides which, and which are held); returns how many were queued.

    Each delivery names its ``subject``: the event's CloudEvents ``subject`` (the feedback or insight id), or,
    when none is given, the ``feedback_id`` / ``insight_id`` of ``data``. Queuing is idempotent per (event, rule,
    channel): an event seen again queues nothing new. An event that matches no rule is counted, not an error.

    Each row keeps the current trace context (:func:`feedbackloop.tracing.inject`: the consumer's ``process
    <topic>`` span), so the delivery worker's attempts are spans of the event's trace; a digest keeps the context
    of the event that opened it. Outside any span nothing is kept and each attempt starts a trace of its own.
    """
    batch = await RoutingBatch.load(uow.session, schedule=schedule, jitter=jitter, noise=noise)
    event = BatchEvent(event_kind, event_id, data, subject_of(event_kind, data) if subject is None else subject[:64])
    queued = await batch.route(uow.session, event, now=now)
    await batch.write(uow.session)
    return queued
