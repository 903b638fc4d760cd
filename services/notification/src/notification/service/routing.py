"""An event to deliveries: load the facts, let :func:`notification.domain.routing.route` decide, queue the result.

Runs inside the consumer's unit of work (one transaction per batch, each event in a savepoint), so the deliveries
an event queues and its processed mark commit together; it never commits itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from feedbackloop import tracing
from feedbackloop.db import UnitOfWork
from feedbackloop.logs import get_logger
from notification.domain.backoff import next_delay
from notification.domain.channels import channel_from_json
from notification.domain.fields import EventKind
from notification.domain.lifecycle import DeliveryStatus
from notification.domain.noise import EpisodeMark, QuietHours, parse_quiet_hours
from notification.domain.routing import (
    RouteDecision,
    RoutedEvent,
    RoutedRule,
    RoutingFacts,
    episode_of,
    route,
    subject_of,
)
from notification.domain.rules import RuleInvalid, parse_throttle
from notification.service.rules import fires
from notification.store.models import InsightEpisode
from notification.store.repository import DeliveryRepository, NoiseRepository, RuleRepository, TeamRepository, utc

__all__ = ["DELIVERIES_HELD", "DELIVERIES_QUEUED", "EPISODES_SUPPRESSED", "EVENTS_UNMATCHED", "NoiseSettings",
           "route_event"]

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


@dataclass(frozen=True)
class NoiseSettings:
    """How :func:`route_event` keeps noise down (from the service settings)."""

    episode_gap_s: float = 3600.0
    digest_grace_s: float = 1.0


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
    session = uow.session
    rules = [r for r in await RuleRepository(session).enabled() if fires(r, event_kind, data)]
    if not rules:
        EVENTS_UNMATCHED.labels(_SERVICE, event_kind).inc()
        return 0
    now = now or datetime.now(UTC)
    event = RoutedEvent(event_kind, event_id, data, subject_of(event_kind, data) if subject is None else subject[:64])
    routed = [RoutedRule(r.id, r.name, r.team, [channel_from_json(c).shown_url() for c in r.channels],
                         parse_throttle(r.throttle) if r.throttle else None) for r in rules]
    noise_state = NoiseRepository(session)
    episode = episode_of(data) if event_kind == "insight" else None
    marks = await noise_state.episodes([r.id for r in rules], episode[0]) if episode else {}
    facts = RoutingFacts(
        event=event, rules=routed, now=now,
        quiet_hours=await _quiet_hours(TeamRepository(session), {r.team for r in rules}),
        paused=await noise_state.paused_channels({r.id for r in rules}),
        windows=await noise_state.windows_locked(
            [(r.id, i) for r in routed if r.throttle is not None for i in range(len(r.channels))], now),
        episodes={rule_id: EpisodeMark(utc(m.window_to), m.severity)  # type: ignore[arg-type]
                  for rule_id, m in marks.items()})
    decision = route(facts, first_delay=next_delay(schedule, 0, jitter=jitter) or 0.0,
                     digest_grace_s=noise.digest_grace_s, episode_gap_s=noise.episode_gap_s)
    await _apply(uow, decision, event, marks, now)
    return len(decision.deliveries)


async def _quiet_hours(teams: TeamRepository, names: set[str]) -> dict[str, QuietHours]:
    """The quiet hours of the named teams that have readable ones (a bad stored value is logged and ignored)."""
    found: dict[str, QuietHours] = {}
    for name, raw in (await teams.quiet_hours_of(names)).items():
        try:
            hours = parse_quiet_hours(raw)
        except RuleInvalid as exc:  # stored before a check tightened: ignore it, say so
            log.error("team quiet hours cannot be read; ignored", team=name, error=str(exc))
            continue
        if hours is not None:
            found[name] = hours
    return found


async def _apply(uow: UnitOfWork, decision: RouteDecision, event: RoutedEvent,
                 marks: Mapping[str, InsightEpisode], now: datetime) -> None:
    """Store what the decision says: episode marks, throttle windows, digests, then the deliveries."""
    noise_state = NoiseRepository(uow.session)
    for update in decision.episodes:
        if update.new:
            await noise_state.add(InsightEpisode(rule_id=update.rule_id, episode_key=update.key,
                                                 event_id=update.event_id or event.id,
                                                 window_to=update.mark.window_to,
                                                 severity=update.mark.severity))
            continue
        mark = marks[update.rule_id]
        mark.window_to, mark.severity = update.mark.window_to, update.mark.severity
        if update.event_id is not None:
            mark.event_id = update.event_id
    for rule_id in decision.suppressed:
        EPISODES_SUPPRESSED.labels(_SERVICE).inc()
        log.info("insight continues an episode already sent; not sent again", rule_id=rule_id, event_id=event.id)
    await noise_state.store_windows(decision.windows)
    if not decision.deliveries:
        return
    trace_context = tracing.inject() or None
    common = {"attempts": 0, "schedule_start": 0, "last_status_code": None, "created_at": now, "delivered_at": None,
              "trace_context": trace_context}
    deliveries = DeliveryRepository(uow.session)
    await deliveries.queue([{**common, "id": d.id, "event_id": f"digest:{d.id}", "event_kind": "digest",
                             "subject": None, "rule_id": d.rule_id, "channel_index": d.channel_index, "url": d.url,
                             "status": DeliveryStatus.PENDING, "next_attempt_at": d.due, "last_error": None,
                             "payload": d.payload, "digest_id": None} for d in decision.digests])
    await deliveries.queue([{**common, "id": d.id, "event_id": event.id, "event_kind": event.kind,
                             "subject": event.subject, "rule_id": d.rule_id, "channel_index": d.channel_index,
                             "url": d.url, "status": d.status, "next_attempt_at": d.next_attempt_at,
                             "last_error": d.last_error, "payload": d.payload, "digest_id": d.digest_id}
                            for d in decision.deliveries])
    for d in decision.deliveries:
        if d.hold is not None:
            DELIVERIES_HELD.labels(_SERVICE, d.hold).inc()
    DELIVERIES_QUEUED.labels(_SERVICE, event.kind).inc(len(decision.deliveries))
    log.info("deliveries queued", event_kind=event.kind, deliveries=len(decision.deliveries),
             digested=sum(d.status is DeliveryStatus.DIGESTED for d in decision.deliveries))
