"""The life of a delivery: its statuses and the state machine that moves it on. Pure: no I/O.

::

            queue ──▶ pending ──sent──────────────────────────▶ succeeded
                │       │  ▲ └─retryable failure, schedule left─┘ (due again: the schedule, or Retry-After)
                │       │  │
                │       │  └──────── resume / manual retry ──┐
                │       ├──permanent failure, schedule spent, gone, give up──▶ failed
                │       └──channel paused──▶ paused ──resume──▶ pending
                ├──held (quiet hours, throttle)──▶ digested   (its digest, itself a delivery, is sent instead)
                └──nothing to send to (an owner email without an owner)──▶ skipped   (never sent; ``last_error``
                                                                                      says why)

The statuses are stored as their string values (``deliveries.status``), and are the values the API shows.
A *give up* (the rule was deleted, the item was erased) fails a delivery that was still to be sent, pending or
paused. A *manual retry* (``POST /v1/deliveries/{id}/retry``) queues a failed delivery again with a fresh
schedule, counted from the attempts already made (``schedule_start``); a resumed channel does the same for its
paused deliveries.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from notification.domain.backoff import next_delay

__all__ = [
    "GIVE_UP_FROM",
    "AttemptResult",
    "DeliveryState",
    "DeliveryStatus",
    "Outcome",
    "OutcomeKind",
    "Transition",
    "after_attempt",
    "given_up",
    "paused",
    "requeued",
]


class DeliveryStatus(StrEnum):
    """Where a delivery is; stored as the value (``"pending"`` …)."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DIGESTED = "digested"
    PAUSED = "paused"
    SKIPPED = "skipped"


#: The statuses of a delivery still to be sent, which a give-up (rule deleted, item erased) fails.
GIVE_UP_FROM: tuple[DeliveryStatus, ...] = (DeliveryStatus.PENDING, DeliveryStatus.PAUSED)


class OutcomeKind(StrEnum):
    """What one attempt came to, as the state machine sees it."""

    SENT = "sent"
    RETRYABLE = "retryable"  # a network error, HTTP 5xx/408/429, an SMTP 4xx, a request that could not be built
    PERMANENT = "permanent"  # any other refusal: sending the same again cannot help
    GONE = "gone"  # the rule or its channel was deleted since the delivery was queued: nothing was attempted


@dataclass(frozen=True)
class Outcome:
    """An attempt's outcome: its kind and a ``Retry-After`` (seconds) the target asked for."""

    kind: OutcomeKind
    retry_after: float | None = None

    @property
    def attempted(self) -> bool:
        return self.kind is not OutcomeKind.GONE


class AttemptResult(StrEnum):
    """How an attempt is counted (the ``outcome`` label of the attempts metric)."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class DeliveryState:
    """The fields of a delivery the state machine reads and writes."""

    status: DeliveryStatus
    attempts: int
    schedule_start: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Transition:
    """The delivery after an attempt, and how the attempt counts: a settled delivery (succeeded or failed)
    counts towards its channel's health; one due again does not yet."""

    state: DeliveryState
    result: AttemptResult

    @property
    def settled(self) -> bool:
        return self.result is not AttemptResult.RETRY


def after_attempt(state: DeliveryState, attempt: int, outcome: Outcome, *, now: datetime,
                  schedule: Sequence[float], jitter: float,
                  rand: Callable[[], float] = random.random) -> Transition | None:
    """The delivery after its attempt number ``attempt`` came to ``outcome``; ``None`` when the attempt is stale.

    Stale: the delivery is no longer pending, or another sender already recorded this attempt (its lease ran
    out mid-send): the attempt changes nothing. Otherwise:

    * ``SENT`` → ``succeeded``, delivered now;
    * ``RETRYABLE`` → due again after the schedule's next delay (counted from ``schedule_start``; a longer
      ``Retry-After`` wins), or ``failed`` when the schedule is spent;
    * ``PERMANENT`` → ``failed`` at once; ``GONE`` → ``failed`` without counting an attempt.
    """
    if state.status is not DeliveryStatus.PENDING or state.attempts + 1 != attempt:
        return None
    attempts = attempt if outcome.attempted else state.attempts
    if outcome.kind is OutcomeKind.SENT:
        return Transition(replace(state, status=DeliveryStatus.SUCCEEDED, attempts=attempts, delivered_at=now,
                                  next_attempt_at=None), AttemptResult.SUCCEEDED)
    wait = None
    if outcome.kind is OutcomeKind.RETRYABLE:
        wait = next_delay(schedule, attempts - state.schedule_start, retry_after=outcome.retry_after, jitter=jitter,
                          rand=rand)
    if wait is None:
        return Transition(replace(state, status=DeliveryStatus.FAILED, attempts=attempts, next_attempt_at=None),
                          AttemptResult.FAILED)
    return Transition(replace(state, attempts=attempts, next_attempt_at=now + timedelta(seconds=wait)),
                      AttemptResult.RETRY)


def paused(state: DeliveryState) -> DeliveryState:
    """A pending delivery of a channel just paused: held (``paused``, due never) until the channel is resumed."""
    if state.status is not DeliveryStatus.PENDING:
        return state
    return replace(state, status=DeliveryStatus.PAUSED, next_attempt_at=None)


def requeued(state: DeliveryState, now: datetime) -> DeliveryState | None:
    """A failed delivery retried by hand, or a paused one whose channel was resumed: pending, due now, with a
    fresh schedule counted from the attempts made. ``None`` when the delivery is in neither status."""
    if state.status not in (DeliveryStatus.FAILED, DeliveryStatus.PAUSED):
        return None
    return replace(state, status=DeliveryStatus.PENDING, next_attempt_at=now, schedule_start=state.attempts)


def given_up(state: DeliveryState) -> DeliveryState:
    """A delivery that can never be sent (its rule deleted, its item erased): ``failed`` if it was still to be
    sent (:data:`GIVE_UP_FROM`), otherwise as it was (a sent delivery stays sent)."""
    if state.status not in GIVE_UP_FROM:
        return state
    return replace(state, status=DeliveryStatus.FAILED, next_attempt_at=None)
