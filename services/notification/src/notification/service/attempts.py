"""The delivery worker's two transactions around each send: claim due deliveries, then record the attempt.

No transaction is open while a request is in flight: :func:`claim_due` leases deliveries in a short write
transaction, the worker sends, and :func:`record_attempt` stores the attempt and moves the delivery on, as the
state machine (:func:`notification.domain.lifecycle.after_attempt`) and the channel's health
(:func:`notification.domain.health.health_after`) decide. A channel paused by its failures holds its pending
deliveries and says so on ``insights.v1`` (``type: channel_paused``), through the outbox, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop.contracts import INSIGHTS
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory
from feedbackloop.logs import get_logger
from notification.domain.channels import channel_from_json, mask_shown_url
from notification.domain.health import channel_paused_insight, health_after, pause_event_id
from notification.domain.lifecycle import (
    AttemptResult,
    DeliveryState,
    DeliveryStatus,
    Outcome,
    OutcomeKind,
    after_attempt,
)
from notification.store.models import ChannelHealth, Delivery, DeliveryAttempt
from notification.store.repository import Claim, DeliveryRepository, NoiseRepository
from notification.transports.base import ERROR_CHARS, SendOutcome

__all__ = ["CHANNELS_PAUSED", "GONE_ERROR", "claim_due", "record_attempt", "record_attempts"]

log = get_logger(__name__)

CHANNELS_PAUSED = Counter("feedbackloop_notification_channels_paused_total",
                          "Channels paused after failing deliveries in a row", ["service", "type"])
_SERVICE = "notification"
#: How long past the send timeout a claim stays leased to its sender.
_LEASE_MARGIN = timedelta(seconds=30)
#: ``last_error`` of a delivery whose rule or channel was deleted before it could be sent.
GONE_ERROR = "the rule or channel was deleted"


async def claim_due(read_sessions: async_sessionmaker[AsyncSession], uow_factory: UnitOfWorkFactory, limit: int, *,
                    send_timeout: float, skip_locked: bool) -> list[Claim]:
    """Lease up to ``limit`` due pending deliveries for one send each (``FOR UPDATE SKIP LOCKED`` when
    ``skip_locked``, so several copies share the queue). A cheap read first: no write lock when nothing is due."""
    now = datetime.now(UTC)
    async with read_sessions() as session, session.begin():
        if not await DeliveryRepository(session).any_due(now):
            return []
    lease = now + timedelta(seconds=send_timeout) + _LEASE_MARGIN
    async with uow_factory() as uow:
        claims = await DeliveryRepository(uow.session).claim_due(now, lease, limit, skip_locked=skip_locked)
        if claims:
            await uow.commit()
    return claims


async def record_attempt(uow_factory: UnitOfWorkFactory, claim: Claim, sent: SendOutcome | None, *,
                         schedule: Sequence[float], jitter: float, pause_after: int) -> AttemptResult | None:
    """Store the attempt ``sent`` (``None``: nothing was attempted, the rule or channel is gone) and move the
    delivery on; returns how the attempt counts, or ``None`` when it was stale (the delivery was deleted, or
    another sender recorded it after this one's lease ran out)."""
    (result,) = await record_attempts(uow_factory, [(claim, sent)], schedule=schedule, jitter=jitter,
                                      pause_after=pause_after)
    return result


async def record_attempts(uow_factory: UnitOfWorkFactory, attempts: Sequence[tuple[Claim, SendOutcome | None]], *,
                          schedule: Sequence[float], jitter: float,
                          pause_after: int) -> list[AttemptResult | None]:
    """:func:`record_attempt` for several attempts, in order, in one transaction (one commit for all: the worker
    records the sends that finished together); the deliveries are read in one statement."""
    now = datetime.now(UTC)
    async with uow_factory() as uow:
        repo = DeliveryRepository(uow.session)
        found = await repo.get_many({claim.id for claim, _ in attempts})
        healths = await NoiseRepository(uow.session).health_of(
            {(claim.rule_id, claim.channel_index) for claim, _ in attempts if claim.channel is not None})
        results = [await _record(uow, repo, found.get(claim.id), claim, sent, now, schedule, jitter, pause_after,
                                 healths) for claim, sent in attempts]
        await uow.commit()
    return results


async def _record(uow: UnitOfWork, repo: DeliveryRepository, delivery: Delivery | None, claim: Claim,
                  sent: SendOutcome | None, now: datetime, schedule: Sequence[float], jitter: float,
                  pause_after: int, healths: dict[tuple[str, int], ChannelHealth | None]) -> AttemptResult | None:
    outcome = sent.outcome() if sent is not None else Outcome(OutcomeKind.GONE)
    status, error = (sent.status, sent.error) if sent is not None else (None, GONE_ERROR)
    error = error[:ERROR_CHARS] if error else None
    if delivery is None:
        return None
    transition = after_attempt(_state(delivery), claim.attempt, outcome, now=now, schedule=schedule, jitter=jitter)
    if transition is None:
        return None
    if sent is not None:
        await repo.record_attempt(DeliveryAttempt(delivery_id=claim.id, attempt=claim.attempt, at=now,
                                                  status_code=status, error=error,
                                                  duration_ms=round(sent.took * 1000, 1)))
        if claim.channel is not None:
            delivery.url = _shown_url(claim.channel, delivery.url)
    after = transition.state
    delivery.status, delivery.attempts = after.status, after.attempts
    delivery.next_attempt_at, delivery.delivered_at = after.next_attempt_at, after.delivered_at
    delivery.last_status_code, delivery.last_error = status, error
    if sent is not None and transition.result is AttemptResult.SUCCEEDED and sent.detail:
        delivery.result = sent.detail[:ERROR_CHARS]
    if transition.settled and claim.channel is not None:
        await _track_health(uow, claim, transition.result is AttemptResult.SUCCEEDED, error, now, pause_after,
                            healths)
    return transition.result


def _state(delivery: Delivery) -> DeliveryState:
    return DeliveryState(DeliveryStatus(delivery.status), delivery.attempts, delivery.schedule_start,
                         delivery.next_attempt_at, delivery.delivered_at)


async def _track_health(uow: UnitOfWork, claim: Claim, succeeded: bool, error: str | None, now: datetime,
                        threshold: int, healths: dict[tuple[str, int], ChannelHealth | None]) -> None:
    """Count the channel's failed deliveries in a row; at ``threshold``, pause it and raise the event.
    ``healths``: the health rows read for the batch (``None``: none stored), kept up to date."""
    noise = NoiseRepository(uow.session)
    key = (claim.rule_id, claim.channel_index)
    if succeeded:
        health = healths[key] if key in healths else await noise.health(*key)
        if health is not None:
            health.consecutive_failures = health_after(health.consecutive_failures or 0,
                                                       health.paused_at is not None, True, threshold
                                                       ).consecutive_failures
        return
    health = healths[key] = await noise.health_locked(claim.rule_id, claim.channel_index)
    change = health_after(health.consecutive_failures or 0, health.paused_at is not None, False, threshold)
    health.consecutive_failures, health.last_error = change.consecutive_failures, error
    if not change.pause:
        return
    health.paused_at = now
    held = await DeliveryRepository(uow.session).pause_pending(
        claim.rule_id, claim.channel_index, f"channel paused after {threshold} failed deliveries in a row")
    channel: Mapping[str, Any] = claim.channel or {}
    channel_type = str(channel.get("type", "webhook"))
    shown = _shown_url(channel, "")
    rule = claim.payload.get("rule") or {}
    uow.publish(INSIGHTS, channel_paused_insight(
        rule_id=claim.rule_id, rule_name=str(rule.get("name", "?")), team=str(rule.get("team", "?")),
        channel_index=claim.channel_index, channel_type=channel_type,
        shown_url=mask_shown_url(shown) if shown else "?",  # an insight is read by any key: the URL masked
        failures=change.consecutive_failures, last_error=error, paused_at=now, held=held),
        event_id=pause_event_id(claim.rule_id, claim.channel_index, now))
    CHANNELS_PAUSED.labels(_SERVICE, channel_type).inc()
    log.warning("channel paused", rule_id=claim.rule_id, channel_index=claim.channel_index,
                failures=change.consecutive_failures, held=held)


def _shown_url(channel: Mapping[str, Any], stored: str) -> str:
    """The channel's URL as deliveries show it (:meth:`Channel.shown_url`); ``stored`` when it cannot be read."""
    try:
        return channel_from_json(channel).shown_url()
    except (KeyError, TypeError, ValueError):
        return stored
