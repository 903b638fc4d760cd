"""Where an event goes: the deliveries, digests and suppressions one event causes. Pure: facts in, a decision out.

:func:`route` takes what the use case loaded — the event, the enabled rules it matches, the teams' quiet hours,
the paused channels, the channels' throttle windows and the rules' last insight episode — and decides, for each
channel of each rule:

1. an insight that continues an episode the rule already sent (:func:`notification.domain.noise.is_same_episode`)
   queues nothing for that rule (*suppressed*); one that escalates it queues nothing on a ``tracker`` channel (the
   episode's issue is filed: one issue per episode);
2. otherwise one delivery per channel, held by the first that applies — a **paused** channel (``paused``, sent
   when it is resumed), the team's **quiet hours**, the rule's **throttle** (``digested``: rolled into the
   digest of that channel and reason, released when the quiet hours or the throttle window end) — or else
   ``pending``, due after the schedule's first delay.

A ``loop_closed`` insight is routed once per customer (:mod:`notification.domain.loop`): the use case passes each
customer's view as its own :class:`RoutedEvent` with ``fanout`` set. Such a view is never an episode (its
deliveries are keyed by insight, customer, rule and channel instead, so a revision tells no one twice); each
channel decides what it makes of the view (:func:`notification.domain.loop.fit`: a reply needs a conversation of
its tool, an owner email an owner — ``skipped`` with the reason otherwise). A delivery that speaks to or about one
customer (a reply, an owner's email, a tracker issue) is never rolled into a digest: quiet hours make it due when
they end, and throttles do not count it.

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
from notification.domain.loop import (
    FitKind,
    View,
    addresses_customer,
    fanout_delivery_id,
    fanout_key_for,
    fit,
    once_delivery_id,
)
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
    """The event being routed: ``kind`` feedback or insight, its CloudEvent id, data and subject; ``fanout`` the
    customer id when ``data`` is one customer's view of a ``loop_closed`` insight."""

    kind: str
    id: str
    data: Mapping[str, Any]
    subject: str | None = None
    fanout: str | None = None


@dataclass(frozen=True)
class RoutedRule:
    """An enabled rule the event matches: its channels as deliveries show them (:meth:`Channel.shown_url`), and
    as stored (``settings``, by index; a channel without is treated as a webhook)."""

    id: str
    name: str
    team: str
    channels: Sequence[str]
    throttle: Throttle | None = None
    settings: Sequence[Mapping[str, Any]] = ()


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
    fanout_key: str | None = None


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
    episode = episode_of(event.data) if event.kind == "insight" and event.fanout is None else None
    view = View(event.data, event.fanout)
    for rule in facts.rules:
        # an escalation (severity rose) within the episode is news for people, but its issue is already filed
        same_story = episode is not None and is_same_episode(facts.episodes.get(rule.id), episode[1], "info",
                                                             episode_gap_s)
        if episode is not None and _continues(facts, rule.id, episode, episode_gap_s, decision):
            decision.suppressed.append(rule.id)
            continue
        payload = build_payload(event_kind=event.kind, rule_id=rule.id, rule_name=rule.name, team=rule.team,
                                data=event.data, event_id=event.id)
        quiet_until = facts.quiet_hours[rule.team].until(now) if rule.team in facts.quiet_hours else None
        for index, url in enumerate(rule.channels):
            settings = rule.settings[index] if index < len(rule.settings) else {}
            fitted = fit(settings, event.kind, view)
            if fitted.kind is FitKind.NONE or (same_story and settings.get("type") == "tracker"):
                continue
            planned = PlannedDelivery(id=_delivery_id(event, rule.id, index, settings), rule_id=rule.id,
                                      channel_index=index, url=url, status=DeliveryStatus.PENDING, payload=payload,
                                      next_attempt_at=now + timedelta(seconds=first_delay),
                                      fanout_key=fanout_key_for(event.fanout) if event.fanout is not None else None)
            if fitted.kind is FitKind.SKIP:
                decision.deliveries.append(replace(planned, status=DeliveryStatus.SKIPPED, next_attempt_at=None,
                                                   last_error=fitted.reason))
                continue
            personal = addresses_customer(settings, view)
            held: tuple[Hold, datetime, datetime] | None = None  # reason, window start, release time
            if (rule.id, index) in facts.paused:
                planned = replace(planned, status=DeliveryStatus.PAUSED, next_attempt_at=None, hold=Hold.PAUSED,
                                  last_error=PAUSED_ERROR)
            elif quiet_until is not None and personal:  # no digest can carry it: it waits for the morning
                planned = replace(planned, next_attempt_at=quiet_until + timedelta(seconds=digest_grace_s))
            elif quiet_until is not None:
                held = (Hold.QUIET_HOURS, now, quiet_until)
            elif rule.throttle is not None and not personal:
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


def _delivery_id(event: RoutedEvent, rule_id: str, index: int, settings: Mapping[str, Any]) -> str:
    """One customer's view: keyed by (insight, customer, rule, channel); a tracker channel: by (insight, rule,
    channel), so no revision files a second issue; else by (event, rule, channel)."""
    insight_id = str(event.data.get("insight_id") or "") if event.kind == "insight" else ""
    if insight_id and event.fanout is not None:
        return fanout_delivery_id(insight_id, event.fanout, rule_id, index)
    if insight_id and settings.get("type") == "tracker":
        return once_delivery_id(insight_id, rule_id, index)
    return delivery_id_for(event.id, rule_id, index)


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
