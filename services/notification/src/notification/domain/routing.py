"""Where an event goes: the deliveries, digests and suppressions one event causes. Pure: facts in, a decision out.

:func:`route` takes what the use case loaded — the event, the enabled rules it matches, the teams' quiet hours,
the paused channels, the channels' throttle windows and the rules' last insight episode — and decides, for each
channel of each rule:

1. an insight that continues an episode the rule already sent (:func:`notification.domain.noise.is_same_episode`)
   queues nothing for that rule (*suppressed*);
2. otherwise one delivery per channel, held by the first that applies — a **paused** channel (``paused``, sent
   when it is resumed), the team's **quiet hours**, the rule's **throttle** (``digested``: rolled into the
   digest of that channel and reason, released when the quiet hours or the throttle window end) — or else
   ``pending``, due after the schedule's first delay.

Only a delivery that reaches the throttle check counts against the window: a paused or quiet channel's messages
do not use up the throttle. A digest is itself a delivery (``event_kind: digest``), due ``digest_grace`` after
its release, and filled with its items at its first send. Delivery and digest ids are deterministic, so an event
routed again finds the rows it queued the first time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from notification.domain.lifecycle import DeliveryStatus
from notification.domain.noise import EpisodeMark, QuietHours, digest_id_for, episode_key, is_same_episode
from notification.domain.payload import build_payload
from notification.domain.rules import Throttle

__all__ = [
    "DELIVERY_NAMESPACE",
    "PAUSED_ERROR",
    "EpisodeUpdate",
    "Hold",
    "PlannedDelivery",
    "PlannedDigest",
    "RouteDecision",
    "RoutedEvent",
    "RoutedRule",
    "RoutingFacts",
    "Window",
    "delivery_id_for",
    "episode_of",
    "route",
    "subject_of",
]

#: Namespace of delivery ids: the same (event, rule, channel) always gets the same webhook-id.
DELIVERY_NAMESPACE = uuid.UUID("0b6f3a52-8d1e-5c4a-9f27-6e3d1c2b4a90")
#: ``last_error`` of a delivery queued for a paused channel.
PAUSED_ERROR = "the channel is paused"


def delivery_id_for(event_id: str, rule_id: str, channel_index: int) -> str:
    """The webhook-id of one (event, rule, channel): deterministic, so queuing it again finds the same row."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}\x1f{rule_id}\x1f{channel_index}"))


class Hold(StrEnum):
    """Why a delivery is not sent at once (the ``reason`` of a digest and of the held-deliveries metric)."""

    PAUSED = "paused"
    QUIET_HOURS = "quiet_hours"
    THROTTLE = "throttle"


@dataclass(frozen=True)
class RoutedEvent:
    """The event being routed: ``kind`` feedback or insight, its CloudEvent id, data and subject."""

    kind: str
    id: str
    data: Mapping[str, Any]
    subject: str | None = None


@dataclass(frozen=True)
class RoutedRule:
    """An enabled rule the event matches: its channels as deliveries show them (:meth:`Channel.shown_url`)."""

    id: str
    name: str
    team: str
    channels: Sequence[str]
    throttle: Throttle | None = None


@dataclass(frozen=True)
class Window:
    """A (rule, channel)'s throttle window: messages let through between ``start`` and ``end``."""

    start: datetime
    end: datetime
    sent: int


@dataclass(frozen=True)
class RoutingFacts:
    """What :func:`route` decides from. ``windows`` holds the window of each throttled (rule, channel) (a
    missing or ended one opens afresh); ``episodes`` the rule's last sent mark of the event's episode."""

    event: RoutedEvent
    rules: Sequence[RoutedRule]
    now: datetime
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)
    paused: Set[tuple[str, int]] = frozenset()
    windows: Mapping[tuple[str, int], Window] = field(default_factory=dict)
    episodes: Mapping[str, EpisodeMark] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedDelivery:
    id: str
    rule_id: str
    channel_index: int
    url: str
    status: DeliveryStatus
    payload: dict[str, Any]
    next_attempt_at: datetime | None
    hold: Hold | None = None
    digest_id: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class PlannedDigest:
    id: str
    rule_id: str
    channel_index: int
    url: str
    reason: Hold
    due: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class EpisodeUpdate:
    """The episode mark ``rule_id`` keeps after this insight; ``event_id`` None keeps the stored one (the
    insight continued the episode), ``new`` when the rule had no mark."""

    rule_id: str
    key: str
    mark: EpisodeMark
    event_id: str | None
    new: bool = False


@dataclass(frozen=True)
class RouteDecision:
    deliveries: list[PlannedDelivery] = field(default_factory=list)
    digests: list[PlannedDigest] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)  # rule ids whose episode continues
    episodes: list[EpisodeUpdate] = field(default_factory=list)
    windows: dict[tuple[str, int], Window] = field(default_factory=dict)  # throttle windows to store


def subject_of(event_kind: str, data: Mapping[str, Any]) -> str | None:
    """The id an event's data is about: ``feedback_id`` of a feedback item, ``insight_id`` of an insight."""
    value = data.get("feedback_id" if event_kind == "feedback" else "insight_id")
    return str(value)[:64] if value is not None else None


def episode_of(data: Mapping[str, Any]) -> tuple[str, datetime, datetime] | None:
    """An insight's episode key and window (aware UTC); ``None`` when its window cannot be read (never suppressed)."""
    window = data.get("window") or {}
    try:
        start = _aware(datetime.fromisoformat(str(window.get("from"))))
        end = _aware(datetime.fromisoformat(str(window.get("to"))))
    except ValueError:
        return None
    return episode_key(data)[:400], start, end


def route(facts: RoutingFacts, *, first_delay: float, digest_grace_s: float, episode_gap_s: float) -> RouteDecision:
    """The deliveries, digests, suppressions, episode marks and throttle windows one event causes (see module)."""
    event, now = facts.event, facts.now
    decision = RouteDecision()
    windows = dict(facts.windows)
    episode = episode_of(event.data) if event.kind == "insight" else None
    for rule in facts.rules:
        if episode is not None and _continues(facts, rule.id, episode, episode_gap_s, decision):
            decision.suppressed.append(rule.id)
            continue
        payload = build_payload(event_kind=event.kind, rule_id=rule.id, rule_name=rule.name, team=rule.team,
                                data=event.data, event_id=event.id)
        quiet_until = facts.quiet_hours[rule.team].until(now) if rule.team in facts.quiet_hours else None
        for index, url in enumerate(rule.channels):
            planned = PlannedDelivery(id=delivery_id_for(event.id, rule.id, index), rule_id=rule.id,
                                      channel_index=index, url=url, status=DeliveryStatus.PENDING, payload=payload,
                                      next_attempt_at=now + timedelta(seconds=first_delay))
            held: tuple[Hold, datetime, datetime] | None = None  # reason, window start, release time
            if (rule.id, index) in facts.paused:
                planned = replace(planned, status=DeliveryStatus.PAUSED, next_attempt_at=None, hold=Hold.PAUSED,
                                  last_error=PAUSED_ERROR)
            elif quiet_until is not None:
                held = (Hold.QUIET_HOURS, now, quiet_until)
            elif rule.throttle is not None:
                held = _take_slot(windows, decision, (rule.id, index), rule.throttle, now)
            if held is not None:
                reason, opened, release = held
                digest_id = digest_id_for(rule.id, index, reason, release)
                planned = replace(planned, status=DeliveryStatus.DIGESTED, next_attempt_at=None, hold=reason,
                                  digest_id=digest_id)
                if all(d.id != digest_id for d in decision.digests):
                    decision.digests.append(PlannedDigest(
                        id=digest_id, rule_id=rule.id, channel_index=index, url=url, reason=reason,
                        due=release + timedelta(seconds=digest_grace_s),
                        payload={"type": "digest", "reason": str(reason), "rule": payload["rule"],
                                 "window": {"from": opened.isoformat(), "to": release.isoformat()}}))
            decision.deliveries.append(planned)
    return decision


def _continues(facts: RoutingFacts, rule_id: str, episode: tuple[str, datetime, datetime], gap_s: float,
               decision: RouteDecision) -> bool:
    """Whether the insight continues the rule's episode (and so is not sent); records the mark it leaves."""
    key, window_from, window_to = episode
    severity = str(facts.event.data.get("severity", "info"))
    previous = facts.episodes.get(rule_id)
    if previous is not None and is_same_episode(previous, window_from, severity, gap_s):
        mark = EpisodeMark(max(previous.window_to, window_to), previous.severity)
        decision.episodes.append(EpisodeUpdate(rule_id, key, mark, event_id=None))
        return True
    decision.episodes.append(EpisodeUpdate(rule_id, key, EpisodeMark(window_to, severity), facts.event.id,
                                           new=previous is None))
    return False


def _take_slot(windows: dict[tuple[str, int], Window], decision: RouteDecision, key: tuple[str, int],
               throttle: Throttle, now: datetime) -> tuple[Hold, datetime, datetime] | None:
    """Count one message against the channel's window (opening one when none is open); ``None`` when it may go
    out, else the digest it joins: the window's, released when the window ends."""
    window = windows.get(key)
    if window is None or window.end <= now:
        window = Window(start=now, end=now + timedelta(seconds=throttle.window_s), sent=0)
        windows[key] = decision.windows[key] = window  # opened even when it lets nothing through (limit 0)
    if window.sent >= throttle.limit:
        return Hold.THROTTLE, window.start, window.end
    windows[key] = decision.windows[key] = replace(window, sent=window.sent + 1)
    return None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
