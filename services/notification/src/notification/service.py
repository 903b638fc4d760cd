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

from feedbackloop import tracing
from feedbackloop.contracts import ErasureRequest
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory
from feedbackloop.db.erasures import erased_among, is_applied, record_applied
from feedbackloop.http import Conflict, NotFound, ProblemError
from feedbackloop.logs import get_logger
from notification.domain.backoff import next_delay
from notification.domain.channels import Channel, channel_from_json
from notification.domain.erasure import ERASED_ERROR, blanked_payload, digest_without, insight_after_erasure
from notification.domain.fields import EventKind
from notification.domain.noise import (
    EpisodeMark,
    QuietHours,
    digest_id_for,
    episode_key,
    is_same_episode,
    parse_quiet_hours,
)
from notification.domain.payload import build_payload
from notification.domain.rules import RuleInvalid, Throttle, matches, parse_channels, parse_throttle, validate_match
from notification.domain.targets import TargetPolicy
from notification.store.models import Delivery, DeliveryAttempt, InsightEpisode, Rule, Team, erasure_tables
from notification.store.repository import (
    DeliveryRepository,
    ErasureRepository,
    NoiseRepository,
    RuleRepository,
    TeamRepository,
    utc,
)

__all__ = [
    "DELIVERIES_HELD",
    "DELIVERIES_QUEUED",
    "EPISODES_SUPPRESSED",
    "EVENTS_UNMATCHED",
    "NoiseSettings",
    "RuleDraft",
    "TeamDraft",
    "apply_erasure",
    "create_rule",
    "create_team",
    "delete_rule",
    "delete_team",
    "delivery_id_for",
    "get_delivery",
    "get_rule",
    "get_team",
    "is_erased",
    "list_deliveries",
    "list_rules",
    "list_teams",
    "resume_channel",
    "retry_delivery",
    "route_event",
    "rules_matching",
    "update_rule",
    "update_team",
    "upsert_rule_by_name",
    "upsert_team_by_name",
]

log = get_logger(__name__)

#: The ``service`` label of notification's own metrics (named as in :mod:`feedbackloop.metrics`).
_SERVICE = "notification"
EVENTS_UNMATCHED = Counter("feedbackloop_notification_events_unmatched_total", "Events that matched no enabled rule",
                           ["service", "event"])
DELIVERIES_QUEUED = Counter("feedbackloop_notification_deliveries_queued_total", "Deliveries queued by matching rules",
                            ["service", "event"])
DELIVERIES_HELD = Counter("feedbackloop_notification_deliveries_held_total",
                          "Matches rolled into a digest instead of sent, or held for a paused channel",
                          ["service", "reason"])
EPISODES_SUPPRESSED = Counter("feedbackloop_notification_insight_episodes_suppressed_total",
                              "Insights not sent again because they continue an episode a rule already sent",
                              ["service"])

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
    throttle: dict[str, Any] | None = None


@dataclass(frozen=True)
class TeamDraft:
    """A team as a client sent it; ``quiet_hours`` is checked by the domain."""

    name: str
    quiet_hours: dict[str, Any] | None = None


@dataclass(frozen=True)
class NoiseSettings:
    """How :func:`route_event` keeps noise down (from the service settings)."""

    episode_gap_s: float = 3600.0
    digest_grace_s: float = 1.0


def _invalid(exc: RuleInvalid) -> ProblemError:
    return ProblemError(f"Invalid rule: {exc}.", status=422, title="Invalid rule", errors=exc.errors)


def _checked(draft: RuleDraft, policy: TargetPolicy,
             previous: Sequence[Channel] = ()) -> tuple[list[Channel], Throttle | None]:
    """The rule's channels and throttle, or a 422 problem naming every bad field."""
    try:
        return _validated(draft, policy, previous)
    except RuleInvalid as exc:
        raise _invalid(exc) from None


def _validated(draft: RuleDraft, policy: TargetPolicy,
               previous: Sequence[Channel] = ()) -> tuple[list[Channel], Throttle | None]:
    """The rule's channels and throttle, or :class:`RuleInvalid` naming every bad field of match, channels, throttle."""
    errors: list[dict[str, str]] = []
    channels: list[Channel] = []
    throttle: Throttle | None = None
    try:
        validate_match(draft.match)
    except RuleInvalid as exc:
        errors += exc.errors
    try:
        channels = parse_channels(draft.channels, policy, previous)
    except RuleInvalid as exc:
        errors += exc.errors
    try:
        throttle = parse_throttle(draft.throttle)
    except RuleInvalid as exc:
        errors += exc.errors
    if errors:
        raise RuleInvalid(errors)
    return channels, throttle


async def create_rule(uow_factory: UnitOfWorkFactory, draft: RuleDraft, policy: TargetPolicy) -> Rule:
    """Store a new rule; a 422 problem names every invalid field, operator, URL, secret or throttle key."""
    channels, throttle = _checked(draft, policy)
    now = datetime.now(UTC)
    rule = Rule(id=str(uuid.uuid4()), name=draft.name, team=draft.team, match=draft.match,
                channels=[c.to_json() for c in channels], enabled=draft.enabled, created_at=now, updated_at=now,
                throttle=throttle.to_json() if throttle else None)
    async with uow_factory() as uow:
        RuleRepository(uow.session).add(rule)
        await uow.commit()
    log.info("rule created", rule_id=rule.id, team=rule.team, channels=len(channels))
    return rule


async def update_rule(uow_factory: UnitOfWorkFactory, rule_id: str, draft: RuleDraft, policy: TargetPolicy) -> Rule:
    """Replace a rule; a channel sent masked keeps what is stored (see :func:`parse_channels`).

    When the channels change, their throttle windows and failure counts start afresh (a fixed URL is a new start).
    """
    async with uow_factory() as uow:
        repo = RuleRepository(uow.session)
        rule = await repo.get(rule_id)
        if rule is None:
            raise NotFound(f"No rule {rule_id}.")
        before = list(rule.channels)
        _apply(rule, draft, *_checked(draft, policy, [channel_from_json(c) for c in rule.channels]))
        if rule.channels != before:
            await _fresh_start(uow.session, rule)
        await uow.commit()
    log.info("rule updated", rule_id=rule_id)
    return rule


async def _fresh_start(session: AsyncSession, rule: Rule) -> None:
    """Forget a rule's throttle windows, failure counts and episodes, and queue its paused deliveries again."""
    await NoiseRepository(session).forget_rule(rule.id)
    deliveries = DeliveryRepository(session)
    for index in range(len(rule.channels)):
        await deliveries.resume_paused(rule.id, index, datetime.now(UTC))


def _apply(rule: Rule, draft: RuleDraft, channels: list[Channel], throttle: Throttle | None) -> None:
    rule.name, rule.team, rule.match, rule.enabled = draft.name, draft.team, draft.match, draft.enabled
    rule.channels = [c.to_json() for c in channels]
    rule.throttle = throttle.to_json() if throttle else None
    rule.updated_at = datetime.now(UTC)


async def delete_rule(uow_factory: UnitOfWorkFactory, rule_id: str) -> None:
    """Delete a rule; its pending deliveries fail (nothing can sign them any more), its history stays."""
    async with uow_factory() as uow:
        repo = RuleRepository(uow.session)
        rule = await repo.get(rule_id)
        if rule is None:
            raise NotFound(f"No rule {rule_id}.")
        await repo.delete(rule)
        await DeliveryRepository(uow.session).fail_pending_of_rule(rule_id, "rule deleted")
        await NoiseRepository(uow.session).forget_rule(rule_id)
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
                      schedule: Sequence[float], jitter: float = 0.1, noise: NoiseSettings = NoiseSettings(),
                      now: datetime | None = None, subject: str | None = None) -> int:
    """Queue a delivery for each channel of each enabled rule the event matches; returns how many were queued.

    Each delivery names its ``subject``: the event's CloudEvents ``subject`` (the feedback or insight id), or,
    when none is given, the ``feedback_id`` / ``insight_id`` of ``data``.

    Runs in the caller's transaction and never commits. Queuing is idempotent per (event, rule, channel): an
    event seen again queues nothing new. An event that matches no rule is counted, and is not an error.

    Each queued delivery is ``pending`` (sent as soon as possible), or:

    * not queued at all when the event is an insight that continues an episode the rule already sent;
    * ``paused`` when its channel is paused (sent when the channel is resumed);
    * ``digested`` when the rule's team is in quiet hours (rolled into one digest per channel, sent when they end)
      or when the rule's throttle already let ``limit`` messages through in the channel's open window (rolled
      into one digest per window, sent when the window ends). The digest is itself a delivery (``event_kind``
      ``digest``), queued here with its release time, and filled with its items at its first send.

    Each row keeps the current trace context (:func:`feedbackloop.tracing.inject`: the consumer's ``process
    <topic>`` span), so the delivery worker's attempts are spans of the event's trace; a digest keeps the context
    of the event that opened it. Outside any span (no valid context) nothing is kept and each attempt starts a
    trace of its own.
    """
    session = uow.session
    rules = [r for r in await RuleRepository(session).enabled() if _fires(r, event_kind, data)]
    if not rules:
        EVENTS_UNMATCHED.labels(_SERVICE, event_kind).inc()
        return 0
    now = now or datetime.now(UTC)
    subject = _subject_of(event_kind, data) if subject is None else subject[:64]
    state = NoiseRepository(session)
    quiet = {name: hours for name, raw in (await TeamRepository(session).quiet_hours_of({r.team for r in rules}))
             .items() if (hours := _quiet_hours(name, raw)) is not None}
    paused = await state.paused_channels({r.id for r in rules})
    first = timedelta(seconds=next_delay(schedule, 0, jitter=jitter) or 0.0)
    grace = timedelta(seconds=noise.digest_grace_s)
    trace_context = tracing.inject() or None
    rows: list[dict[str, Any]] = []
    digests: dict[str, dict[str, Any]] = {}
    for rule in rules:
        if event_kind == "insight" and await _continues_episode(state, rule.id, event_id, data, noise.episode_gap_s):
            EPISODES_SUPPRESSED.labels(_SERVICE).inc()
            log.info("insight continues an episode already sent; not sent again", rule_id=rule.id, event_id=event_id)
            continue
        payload = build_payload(event_kind=event_kind, rule_id=rule.id, rule_name=rule.name, team=rule.team,
                                data=data, event_id=event_id)
        quiet_until = quiet[rule.team].until(now) if rule.team in quiet else None
        throttle = parse_throttle(rule.throttle) if rule.throttle else None
        for index, raw_channel in enumerate(rule.channels):
            shown = channel_from_json(raw_channel).shown_url()
            row = {"id": delivery_id_for(event_id, rule.id, index), "event_id": event_id, "event_kind": event_kind,
                   "subject": subject, "rule_id": rule.id, "channel_index": index, "url": shown, "status": "pending",
                   "attempts": 0, "schedule_start": 0, "next_attempt_at": now + first, "last_status_code": None,
                   "last_error": None, "created_at": now, "delivered_at": None, "payload": payload,
                   "digest_id": None, "trace_context": trace_context}
            hold: tuple[str, datetime, datetime] | None = None  # reason, window start, release time
            if (rule.id, index) in paused:
                row.update(status="paused", next_attempt_at=None, last_error="the channel is paused")
                DELIVERIES_HELD.labels(_SERVICE, "paused").inc()
            elif quiet_until is not None:
                hold = ("quiet_hours", now, quiet_until)
            elif throttle is not None:
                hold = await _throttle(state, rule.id, index, throttle, now)
            if hold is not None:
                reason, opened, release = hold
                digest_id = digest_id_for(rule.id, index, reason, release)
                row.update(status="digested", next_attempt_at=None, digest_id=digest_id)
                digests.setdefault(digest_id, {
                    "id": digest_id, "event_id": f"digest:{digest_id}", "event_kind": "digest", "subject": None,
                    "rule_id": rule.id,
                    "channel_index": index, "url": shown, "status": "pending", "attempts": 0, "schedule_start": 0,
                    "next_attempt_at": release + grace, "last_status_code": None, "last_error": None,
                    "created_at": now, "delivered_at": None, "digest_id": None, "trace_context": trace_context,
                    "payload": {"type": "digest", "reason": reason, "rule": payload["rule"],
                                "window": {"from": opened.isoformat(), "to": release.isoformat()}}})
                DELIVERIES_HELD.labels(_SERVICE, reason).inc()
            rows.append(row)
    if not rows:
        return 0
    deliveries = DeliveryRepository(session)
    await deliveries.queue(list(digests.values()))
    await deliveries.queue(rows)
    DELIVERIES_QUEUED.labels(_SERVICE, event_kind).inc(len(rows))
    log.info("deliveries queued", event_kind=event_kind, deliveries=len(rows), digested=sum(
        r["status"] == "digested" for r in rows))
    return len(rows)


def _subject_of(event_kind: str, data: Mapping[str, Any]) -> str | None:
    """The id an event's data is about: ``feedback_id`` of a feedback item, ``insight_id`` of an insight."""
    value = data.get("feedback_id" if event_kind == "feedback" else "insight_id")
    return str(value)[:64] if value is not None else None


def _quiet_hours(team: str, raw: Mapping[str, Any]) -> QuietHours | None:
    try:
        return parse_quiet_hours(raw)
    except RuleInvalid as exc:  # stored before a check tightened: ignore it, say so
        log.error("team quiet hours cannot be read; ignored", team=team, error=str(exc))
        return None


async def _throttle(state: NoiseRepository, rule_id: str, index: int, throttle: Throttle,
                    now: datetime) -> tuple[str, datetime, datetime] | None:
    """Count one message against the channel's open window; ``None`` when it may go out, else the digest to join."""
    allowed, start, end = await state.take_slot(rule_id, index, throttle.limit,
                                                timedelta(seconds=throttle.window_s), now)
    return None if allowed else ("throttle", start, end)


async def _continues_episode(state: NoiseRepository, rule_id: str, event_id: str, data: Mapping[str, Any],
                             gap_s: float) -> bool:
    """Whether an insight continues the episode the rule last sent; otherwise it becomes the episode's mark."""
    window = data.get("window") or {}
    try:
        window_from = _aware(datetime.fromisoformat(str(window.get("from"))))
        window_to = _aware(datetime.fromisoformat(str(window.get("to"))))
    except ValueError:
        return False
    severity = str(data.get("severity", "info"))
    key = episode_key(data)[:400]
    mark = await state.episode(rule_id, key)
    previous = EpisodeMark(utc(mark.window_to), mark.severity) if mark else None  # type: ignore[arg-type]
    if mark is not None and is_same_episode(previous, window_from, severity, gap_s):
        mark.window_to = max(previous.window_to, window_to)  # type: ignore[union-attr]
        return True
    if mark is None:
        await state.add(InsightEpisode(rule_id=rule_id, episode_key=key, event_id=event_id, window_to=window_to,
                                 severity=severity))
    else:
        mark.event_id, mark.window_to, mark.severity = event_id, window_to, severity
    return False


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def list_deliveries(sessions: async_sessionmaker[AsyncSession], limit: int,
                          after: tuple[datetime, str] | None, *, status: str | None = None,
                          rule_id: str | None = None, event_id: str | None = None,
                          subject: str | None = None) -> list[Delivery]:
    async with sessions() as session, session.begin():
        return await DeliveryRepository(session).page(limit, after, status=status, rule_id=rule_id,
                                                      event_id=event_id, subject=subject)


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


async def resume_channel(uow_factory: UnitOfWorkFactory, rule_id: str, channel_index: int) -> int:
    """Un-pause a (rule, channel): its failure count starts afresh and its paused deliveries are queued again.

    Returns how many deliveries were queued again; 404 when the rule or channel does not exist, 409 when the
    channel is not paused.
    """
    async with uow_factory() as uow:
        rule = await RuleRepository(uow.session).get(rule_id)
        if rule is None or not 0 <= channel_index < len(rule.channels):
            raise NotFound(f"No channel {channel_index} on rule {rule_id}.")
        health = await NoiseRepository(uow.session).health(rule_id, channel_index)
        if health is None or health.paused_at is None:
            raise Conflict(f"Channel {channel_index} of rule {rule_id} is not paused.")
        health.paused_at, health.consecutive_failures = None, 0
        queued = await DeliveryRepository(uow.session).resume_paused(rule_id, channel_index, datetime.now(UTC))
        await uow.commit()
    log.info("channel resumed", rule_id=rule_id, channel_index=channel_index, requeued=queued)
    return queued


def _team_checked(draft: TeamDraft) -> dict[str, Any] | None:
    try:
        hours = parse_quiet_hours(draft.quiet_hours)
    except RuleInvalid as exc:
        raise ProblemError(f"Invalid team: {exc}.", status=422, title="Invalid team", errors=exc.errors) from exc
    return hours.to_json() if hours else None


async def create_team(uow_factory: UnitOfWorkFactory, draft: TeamDraft) -> Team:
    """Store a team; 409 when the name is taken, 422 naming a bad quiet-hours key."""
    hours = _team_checked(draft)
    now = datetime.now(UTC)
    team = Team(id=str(uuid.uuid4()), name=draft.name, quiet_hours=hours, created_at=now, updated_at=now)
    async with uow_factory() as uow:
        repo = TeamRepository(uow.session)
        if await repo.by_name(draft.name) is not None:
            raise Conflict(f"A team called {draft.name!r} exists; PUT /v1/teams/{{id}} changes it.")
        repo.add(team)
        await uow.commit()
    log.info("team created", team_id=team.id, team=team.name)
    return team


async def update_team(uow_factory: UnitOfWorkFactory, team_id: str, draft: TeamDraft) -> Team:
    """Replace a team's name and quiet hours; 404, 409 (name taken) or 422."""
    hours = _team_checked(draft)
    async with uow_factory() as uow:
        repo = TeamRepository(uow.session)
        team = await repo.get(team_id)
        if team is None:
            raise NotFound(f"No team {team_id}.")
        other = await repo.by_name(draft.name)
        if other is not None and other.id != team_id:
            raise Conflict(f"A team called {draft.name!r} exists.")
        team.name, team.quiet_hours, team.updated_at = draft.name, hours, datetime.now(UTC)
        await uow.commit()
    return team


async def delete_team(uow_factory: UnitOfWorkFactory, team_id: str) -> None:
    """Delete a team (its rules stay, and are sent without quiet hours)."""
    async with uow_factory() as uow:
        repo = TeamRepository(uow.session)
        team = await repo.get(team_id)
        if team is None:
            raise NotFound(f"No team {team_id}.")
        await repo.delete(team)
        await uow.commit()


async def get_team(sessions: async_sessionmaker[AsyncSession], team_id: str) -> Team:
    async with sessions() as session, session.begin():
        team = await TeamRepository(session).get(team_id)
    if team is None:
        raise NotFound(f"No team {team_id}.")
    return team


async def list_teams(sessions: async_sessionmaker[AsyncSession], limit: int,
                     after: tuple[datetime, str] | None) -> list[Team]:
    async with sessions() as session, session.begin():
        return await TeamRepository(session).page(limit, after)


async def upsert_team_by_name(uow: UnitOfWork, draft: TeamDraft) -> str:
    """Create or replace the team called ``draft.name`` in the caller's transaction; ``created`` or ``updated``.

    Raises :class:`RuleInvalid` (not a problem body): the caller (the rules file loader) names file and team.
    """
    hours = parse_quiet_hours(draft.quiet_hours)
    repo = TeamRepository(uow.session)
    team = await repo.by_name(draft.name)
    now = datetime.now(UTC)
    if team is None:
        repo.add(Team(id=str(uuid.uuid4()), name=draft.name, quiet_hours=hours.to_json() if hours else None,
                      created_at=now, updated_at=now))
        return "created"
    team.quiet_hours, team.updated_at = (hours.to_json() if hours else None), now
    return "updated"


async def upsert_rule_by_name(uow: UnitOfWork, draft: RuleDraft, policy: TargetPolicy) -> str:
    """Create or replace the rule called ``draft.name`` in the caller's transaction; ``created`` or ``updated``.

    Raises :class:`RuleInvalid` naming each bad key (the rules file loader adds the file and the rule).
    """
    repo = RuleRepository(uow.session)
    rule = await repo.by_name(draft.name)
    previous = [channel_from_json(c) for c in rule.channels] if rule else []
    channels, throttle = _validated(draft, policy, previous)
    if rule is None:
        now = datetime.now(UTC)
        repo.add(Rule(id=str(uuid.uuid4()), name=draft.name, team=draft.team, match=draft.match,
                      channels=[c.to_json() for c in channels], enabled=draft.enabled, created_at=now,
                      updated_at=now, throttle=throttle.to_json() if throttle else None))
        return "created"
    before = list(rule.channels)
    _apply(rule, draft, channels, throttle)
    if rule.channels != before:
        await _fresh_start(uow.session, rule)
    return "updated"


async def apply_erasure(uow: UnitOfWork, request: ErasureRequest) -> int | None:
    """Blank what notification's deliveries say about the request's items; the delivery log rows stay.

    A feedback delivery about an erased item keeps its rule, channel, times and outcome, and loses the event's
    data; one not sent yet (pending, paused) never will be (``failed``, with :data:`ERASED_ERROR`). An insight
    delivery citing an erased item loses it from its evidence (an ``urgent_item`` one, whose title names the
    customer, is blanked), and a digest already filled loses the erased lines. Records the request and a tombstone
    per item, so a classified event arriving later queues nothing. A request applied before changes nothing and
    returns None; otherwise how many deliveries were changed.
    """
    request_id = str(request.request_id)
    if await is_applied(uow.session, erasure_tables, request_id):
        return None
    erased = {str(f) for f in request.feedback_ids}
    repo = ErasureRepository(uow.session)
    changed = 0
    blanked_events: set[str] = set()
    for delivery in await repo.of_subjects(sorted(erased)):
        delivery.payload = blanked_payload(delivery.payload, request_id)
        delivery.trace_context = None
        if delivery.status in ("pending", "paused"):
            delivery.status, delivery.next_attempt_at, delivery.last_error = "failed", None, ERASED_ERROR
        blanked_events.add(delivery.event_id)
        changed += 1
    for delivery in await repo.of_kind("insight"):
        after = insight_after_erasure(delivery.payload, erased, request_id)
        if after is not None:
            delivery.payload = after
            if after.get("erased"):
                blanked_events.add(delivery.event_id)
            changed += 1
    if blanked_events:
        for digest in await repo.of_kind("digest"):
            pruned = digest_without(digest.payload, blanked_events)
            if pruned is not None:
                digest.payload = pruned
                changed += 1
    await uow.session.flush()
    await record_applied(uow.session, erasure_tables, request_id, customer_id=request.customer_id,
                         feedback_ids=sorted(erased), at=datetime.now(UTC))
    log.info("erasure applied", request_id=request_id, deliveries=changed)
    return changed


async def is_erased(uow: UnitOfWork, feedback_id: str | None) -> bool:
    """Whether an erasure request erased the item ``feedback_id`` here before."""
    return feedback_id is not None and bool(await erased_among(uow.session, erasure_tables, [feedback_id]))
