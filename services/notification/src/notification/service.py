"""Notification use cases: rule management, routing an event to deliveries, and delivery bookkeeping.

Each use case that writes opens a unit of work, calls the domain, stores the result and commits; reads use a
read-only session. ``route_event`` is the exception: it runs inside the consumer's unit of work (one
transaction per batch), so the deliveries it queues and the event's processed mark commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop.db import UnitOfWork, UnitOfWorkFactory
from feedbackloop.http import Conflict, NotFound, ProblemError
from feedbackloop.logs import get_logger
from notification.domain.backoff import next_delay
from notification.domain.fields import EventKind
from notification.domain.payload import build_payload
from notification.domain.rules import RuleInvalid, WebhookChannel, matches, parse_channels, validate_match
from notification.domain.targets import TargetPolicy
from notification.store.models import Delivery, DeliveryAttempt, Rule
from notification.store.repository import DeliveryRepository, RuleRepository

__all__ = [
    "DELIVERIES_QUEUED",
    "EVENTS_UNMATCHED",
    "RuleDraft",
    "create_rule",
    "delete_rule",
    "delivery_id_for",
    "get_delivery",
    "get_rule",
    "list_deliveries",
    "list_rules",
    "retry_delivery",
    "route_event",
    "rules_matching",
    "update_rule",
]

log = get_logger(__name__)

EVENTS_UNMATCHED = Counter("notification_events_unmatched_total", "Events that matched no enabled rule", ["event"])
DELIVERIES_QUEUED = Counter("notification_deliveries_queued_total", "Deliveries queued by matching rules", ["event"])

#: Namespace of delivery ids: the same (event, rule, channel) always gets the same webhook-id.
DELIVERY_NAMESPACE = uuid.UUID("0b6f3a52-8d1e-5c4a-9f27-6e3d1c2b4a90")


def delivery_id_for(event_id: str, rule_id: str, channel_index: int) -> str:
    """The webhook-id of one (event, rule, channel): deterministic, so queuing it again finds the same row."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}\x1f{rule_id}\x1f{channel_index}"))


@dataclass(frozen=True)
class RuleDraft:
    """A rule as a client sent it, before the domain checked ``match`` and ``channels``."""

    name: str
    team: str
    match: dict[str, Any]
    channels: list[Any]
    enabled: bool = True


def _invalid(exc: RuleInvalid) -> ProblemError:
    return ProblemError(f"Invalid rule: {exc}.", status=422, title="Invalid rule", errors=exc.errors)


def _checked(draft: RuleDraft, policy: TargetPolicy, previous: Sequence[WebhookChannel] = ()) -> list[WebhookChannel]:
    errors: list[dict[str, str]] = []
    channels: list[WebhookChannel] = []
    try:
        validate_match(draft.match)
    except RuleInvalid as exc:
        errors += exc.errors
    try:
        channels = parse_channels(draft.channels, policy, previous)
    except RuleInvalid as exc:
        errors += exc.errors
    if errors:
        raise _invalid(RuleInvalid(errors))
    return channels


async def create_rule(uow_factory: UnitOfWorkFactory, draft: RuleDraft, policy: TargetPolicy) -> Rule:
    """Store a new rule; a 422 problem names every invalid field, operator, URL or secret."""
    channels = _checked(draft, policy)
    now = datetime.now(UTC)
    rule = Rule(id=str(uuid.uuid4()), name=draft.name, team=draft.team, match=draft.match,
                channels=[c.to_json() for c in channels], enabled=draft.enabled, created_at=now, updated_at=now)
    async with uow_factory() as uow:
        RuleRepository(uow.session).add(rule)
        await uow.commit()
    log.info("rule created", rule_id=rule.id, team=rule.team, channels=len(channels))
    return rule


async def update_rule(uow_factory: UnitOfWorkFactory, rule_id: str, draft: RuleDraft, policy: TargetPolicy) -> Rule:
    """Replace a rule; a channel sent with secret ``***`` (or none) keeps the stored secret of its URL."""
    async with uow_factory() as uow:
        repo = RuleRepository(uow.session)
        rule = await repo.get(rule_id)
        if rule is None:
            raise NotFound(f"No rule {rule_id}.")
        previous = [WebhookChannel(url=c["url"], secret=c["secret"]) for c in rule.channels]
        channels = _checked(draft, policy, previous)
        rule.name, rule.team, rule.match, rule.enabled = draft.name, draft.team, draft.match, draft.enabled
        rule.channels = [c.to_json() for c in channels]
        rule.updated_at = datetime.now(UTC)
        await uow.commit()
    log.info("rule updated", rule_id=rule_id)
    return rule


async def delete_rule(uow_factory: UnitOfWorkFactory, rule_id: str) -> None:
    """Delete a rule; its pending deliveries fail (nothing can sign them any more), its history stays."""
    async with uow_factory() as uow:
        repo = RuleRepository(uow.session)
        rule = await repo.get(rule_id)
        if rule is None:
            raise NotFound(f"No rule {rule_id}.")
        await repo.delete(rule)
        await DeliveryRepository(uow.session).fail_pending_of_rule(rule_id, "rule deleted")
        await uow.commit()
    log.info("rule deleted", rule_id=rule_id)


async def get_rule(sessions: async_sessionmaker[AsyncSession], rule_id: str) -> Rule:
    async with sessions() as session, session.begin():
        rule = await RuleRepository(session).get(rule_id)
    if rule is None:
        raise NotFound(f"No rule {rule_id}.")
    return rule


async def list_rules(sessions: async_sessionmaker[AsyncSession], limit: int, after: tuple[datetime, str] | None,
                     team: str | None = None) -> list[Rule]:
    async with sessions() as session, session.begin():
        return await RuleRepository(session).page(limit, after, team)


async def rules_matching(sessions: async_sessionmaker[AsyncSession], event_kind: EventKind,
                         data: Mapping[str, Any]) -> tuple[list[Rule], int]:
    """The enabled rules an event would fire, and how many were evaluated. Queues and sends nothing."""
    async with sessions() as session, session.begin():
        rules = await RuleRepository(session).enabled()
    return [r for r in rules if _fires(r, event_kind, data)], len(rules)


def _fires(rule: Rule, event_kind: str, data: Mapping[str, Any]) -> bool:
    try:
        return matches(rule.match, event_kind, data)
    except (KeyError, TypeError, AttributeError) as exc:  # a stored rule the matcher cannot read: skip, say so
        log.error("rule cannot be evaluated; skipped", rule_id=rule.id, error=repr(exc))
        return False


async def route_event(uow: UnitOfWork, event_kind: EventKind, event_id: str, data: Mapping[str, Any], *,
                      schedule: Sequence[float], jitter: float = 0.1) -> int:
    """Queue a pending delivery for each channel of each enabled rule the event matches; returns how many matched.

    Runs in the caller's transaction and never commits. Queuing is idempotent per (event, rule, channel): an
    event seen again queues nothing new. An event that matches no rule is counted, and is not an error.
    """
    rules = await RuleRepository(uow.session).enabled()
    now = datetime.now(UTC)
    first = timedelta(seconds=next_delay(schedule, 0, jitter=jitter) or 0.0)
    rows: list[dict[str, Any]] = []
    for rule in rules:
        if not _fires(rule, event_kind, data):
            continue
        payload = build_payload(event_kind=event_kind, rule_id=rule.id, rule_name=rule.name, team=rule.team,
                                data=data, event_id=event_id)
        for index, channel in enumerate(rule.channels):
            rows.append({"id": delivery_id_for(event_id, rule.id, index), "event_id": event_id,
                         "event_kind": event_kind, "rule_id": rule.id, "channel_index": index,
                         "url": channel["url"], "status": "pending", "attempts": 0, "schedule_start": 0,
                         "next_attempt_at": now + first, "last_status_code": None, "last_error": None,
                         "created_at": now, "delivered_at": None, "payload": payload})
    if not rows:
        EVENTS_UNMATCHED.labels(event_kind).inc()
        return 0
    await DeliveryRepository(uow.session).queue(rows)
    DELIVERIES_QUEUED.labels(event_kind).inc(len(rows))
    log.info("deliveries queued", event_kind=event_kind, deliveries=len(rows))
    return len(rows)


async def list_deliveries(sessions: async_sessionmaker[AsyncSession], limit: int,
                          after: tuple[datetime, str] | None, *, status: str | None = None,
                          rule_id: str | None = None, event_id: str | None = None) -> list[Delivery]:
    async with sessions() as session, session.begin():
        return await DeliveryRepository(session).page(limit, after, status=status, rule_id=rule_id,
                                                      event_id=event_id)


async def get_delivery(sessions: async_sessionmaker[AsyncSession],
                       delivery_id: str) -> tuple[Delivery, list[DeliveryAttempt]]:
    async with sessions() as session, session.begin():
        repo = DeliveryRepository(session)
        delivery = await repo.get(delivery_id)
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id}.")
        return delivery, await repo.attempts_of(delivery_id)


async def retry_delivery(uow_factory: UnitOfWorkFactory, delivery_id: str) -> Delivery:
    """Queue a failed delivery again, due now, with the same webhook-id and a fresh retry schedule.

    409 when it is not failed, or when its rule (which holds the signing secret) was deleted.
    """
    async with uow_factory() as uow:
        deliveries = DeliveryRepository(uow.session)
        delivery = await deliveries.get(delivery_id)
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id}.")
        if delivery.status != "failed":
            raise Conflict(f"Delivery {delivery_id} is {delivery.status}; only a failed delivery can be retried.")
        if await RuleRepository(uow.session).get(delivery.rule_id) is None:
            raise Conflict(f"The rule of delivery {delivery_id} was deleted; nothing can sign it any more.")
        delivery.status = "pending"
        delivery.schedule_start = delivery.attempts
        delivery.next_attempt_at = datetime.now(UTC)
        await uow.commit()
    log.info("delivery re-queued", delivery_id=delivery_id)
    return delivery
