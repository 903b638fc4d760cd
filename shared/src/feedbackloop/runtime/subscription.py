"""What a service declares it consumes: per topic, its handler and the optional batch steps around it.

The contract of each step is in :mod:`feedbackloop.runtime.consumer`, which runs them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from feedbackloop.contracts.envelope import Envelope
from feedbackloop.contracts.topics import Topic
from feedbackloop.db.uow import UnitOfWork

__all__ = ["BatchFinisher", "BatchPreparer", "EventHandler", "Subscription"]

#: Handles one event in the batch's unit of work (never commits, never talks to Kafka).
EventHandler = Callable[[UnitOfWork, Envelope[Any]], Awaitable[None]]
#: Sees a batch's decoded events before its transaction; writes and decides nothing.
BatchPreparer = Callable[[Sequence[Envelope[Any]]], Awaitable[None]]
#: Writes what the handlers staged for the batch, once, in its transaction.
BatchFinisher = Callable[[UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    topic: Topic
    handler: EventHandler
    prepare: BatchPreparer | None = None
    finish: BatchFinisher | None = None
    #: ``prepare`` may run for the next batch while this one is handled (what it keeps is kept per batch).
    prepare_ahead: bool = False
