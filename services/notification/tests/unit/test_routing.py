"""The routing decision: hold precedence (paused > quiet hours > throttle), digests, episode suppression. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from notification.domain.lifecycle import DeliveryStatus
from notification.domain.noise import EpisodeMark, QuietHours, digest_id_for
from notification.domain.routing import (
    PAUSED_ERROR,
    Hold,
    RoutedEvent,
    RoutedRule,
    RoutingFacts,
    Window,
    delivery_id_for,
    route,
    subject_of,
)
from notification.domain.rules import Throttle

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, noon UTC
QUIET = QuietHours(start=time(11, 0), end=time(13, 0), timezone="UTC")  # NOW is inside
LOUD = QuietHours(start=time(22, 0), end=time(7, 0), timezone="UTC")  # NOW is outside
FEEDBACK = RoutedEvent("feedback", "evt-1", {"kind": "bug", "feedback_id": "f-1"}, "f-1")


def _rule(rule_id: str = "r1", channels: int = 1, team: str = "billing", throttle: Throttle | None = None
          ) -> RoutedRule:
    return RoutedRule(rule_id, f"rule {rule_id}", team, [f"https://hooks.example.com/{i}" for i in range(channels)],
                      throttle)


def _route(*rules: RoutedRule, event: RoutedEvent = FEEDBACK, **facts: Any) -> Any:
    return route(RoutingFacts(event=event, rules=rules, now=NOW, **facts), first_delay=5.0, digest_grace_s=1.0,
                 episode_gap_s=3600.0)


def test_a_match_without_holds_is_pending_and_due_after_the_first_delay() -> None:
    decision = _route(_rule(channels=2))
    assert [(d.id, d.status, d.next_attempt_at, d.hold) for d in decision.deliveries] == [
        (delivery_id_for("evt-1", "r1", 0), DeliveryStatus.PENDING, NOW + timedelta(seconds=5), None),
        (delivery_id_for("evt-1", "r1", 1), DeliveryStatus.PENDING, NOW + timedelta(seconds=5), None)]
    assert decision.deliveries[0].payload == {"type": "feedback", "event_id": "evt-1", "data": dict(FEEDBACK.data),
                                              "rule": {"id": "r1", "name": "rule r1", "team": "billing"}}
    assert decision.digests == [] and decision.suppressed == [] and decision.windows == {}


def test_no_rule_no_delivery() -> None:
    assert _route().deliveries == []


def test_a_paused_channel_wins_over_quiet_hours_and_throttle_and_uses_no_slot() -> None:
    decision = _route(_rule(channels=2, throttle=Throttle(limit=1, window_s=600)), paused={("r1", 0)},
                      quiet_hours={"billing": QUIET})
    paused, quiet = decision.deliveries
    assert (paused.status, paused.hold, paused.next_attempt_at, paused.last_error, paused.digest_id) == (
        DeliveryStatus.PAUSED, Hold.PAUSED, None, PAUSED_ERROR, None)
    assert (quiet.status, quiet.hold) == (DeliveryStatus.DIGESTED, Hold.QUIET_HOURS)
    assert decision.windows == {}, "neither a paused nor a quiet channel counts against the throttle"


def test_quiet_hours_win_over_the_throttle_and_roll_into_one_digest_per_channel() -> None:
    decision = _route(_rule(channels=2, throttle=Throttle(limit=0, window_s=600)), quiet_hours={"billing": QUIET})
    release = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
    assert [(d.status, d.hold, d.digest_id) for d in decision.deliveries] == [
        (DeliveryStatus.DIGESTED, Hold.QUIET_HOURS, digest_id_for("r1", 0, "quiet_hours", release)),
        (DeliveryStatus.DIGESTED, Hold.QUIET_HOURS, digest_id_for("r1", 1, "quiet_hours", release))]
    first = decision.digests[0]
    assert (first.id, first.reason, first.due, first.channel_index) == (
        digest_id_for("r1", 0, "quiet_hours", release), Hold.QUIET_HOURS, release + timedelta(seconds=1), 0)
    assert first.payload == {"type": "digest", "reason": "quiet_hours",
                             "rule": {"id": "r1", "name": "rule r1", "team": "billing"},
                             "window": {"from": NOW.isoformat(), "to": release.isoformat()}}
    assert len(decision.digests) == 2


def test_quiet_hours_of_another_team_or_outside_the_period_hold_nothing() -> None:
    decision = _route(_rule(team="billing"), _rule("r2", team="support"),
                      quiet_hours={"support": LOUD, "other": QUIET})
    assert [d.status for d in decision.deliveries] == [DeliveryStatus.PENDING, DeliveryStatus.PENDING]


def test_the_throttle_lets_limit_through_then_digests_until_the_window_ends() -> None:
    throttle = Throttle(limit=2, window_s=600)
    end = NOW + timedelta(seconds=300)
    open_window = {("r1", 0): Window(start=NOW - timedelta(seconds=300), end=end, sent=1)}
    let_through = _route(_rule(throttle=throttle), windows=open_window)
    assert let_through.deliveries[0].status is DeliveryStatus.PENDING
    assert let_through.windows == {("r1", 0): Window(NOW - timedelta(seconds=300), end, 2)}
    held = _route(_rule(throttle=throttle), windows=let_through.windows)
    (delivery,), (digest,) = held.deliveries, held.digests
    assert (delivery.status, delivery.hold, delivery.digest_id) == (
        DeliveryStatus.DIGESTED, Hold.THROTTLE, digest_id_for("r1", 0, "throttle", end))
    assert (digest.reason, digest.due, digest.payload["window"]) == (
        Hold.THROTTLE, end + timedelta(seconds=1), {"from": (NOW - timedelta(seconds=300)).isoformat(),
                                                    "to": end.isoformat()})
    assert held.windows == {}, "a full window is left as it is"


def test_an_ended_or_missing_window_opens_afresh() -> None:
    throttle = Throttle(limit=1, window_s=600)
    fresh = Window(NOW, NOW + timedelta(seconds=600), 1)
    ended = {("r1", 0): Window(NOW - timedelta(seconds=900), NOW - timedelta(seconds=300), 1)}
    assert _route(_rule(throttle=throttle), windows=ended).windows == {("r1", 0): fresh}
    assert _route(_rule(throttle=throttle)).windows == {("r1", 0): fresh}
    # limit 0: nothing goes through, but the window it opened is kept, so later matches join the same digest
    held = _route(_rule(throttle=Throttle(limit=0, window_s=600)), windows=ended)
    assert held.deliveries[0].hold is Hold.THROTTLE
    assert held.windows == {("r1", 0): Window(NOW, NOW + timedelta(seconds=600), 0)}


def test_one_event_counts_each_channel_against_its_own_window() -> None:
    decision = _route(_rule(channels=2, throttle=Throttle(limit=1, window_s=60)),
                      windows={("r1", 1): Window(NOW, NOW + timedelta(seconds=60), 1)})
    assert [d.status for d in decision.deliveries] == [DeliveryStatus.PENDING, DeliveryStatus.DIGESTED]


def _insight(severity: str = "warning", start: datetime = NOW, end: datetime | None = None) -> RoutedEvent:
    window = {"from": start.isoformat(), "to": (end or start + timedelta(hours=1)).isoformat()}
    return RoutedEvent("insight", "evt-i", {"insight_id": "i-1", "type": "spike", "theme": "billing",
                                            "severity": severity, "window": window}, "i-1")


def test_an_insight_continuing_a_sent_episode_is_suppressed_and_extends_the_mark() -> None:
    mark = EpisodeMark(window_to=NOW + timedelta(minutes=30), severity="warning")
    decision = _route(_rule(), _rule("r2"), event=_insight(), episodes={"r1": mark})
    assert decision.suppressed == ["r1"]
    assert [d.rule_id for d in decision.deliveries] == ["r2"]
    extended, first = decision.episodes
    assert (extended.rule_id, extended.event_id, extended.new) == ("r1", None, False)
    assert extended.mark == EpisodeMark(NOW + timedelta(hours=1), "warning")
    assert (first.rule_id, first.event_id, first.new, first.mark) == (
        "r2", "evt-i", True, EpisodeMark(NOW + timedelta(hours=1), "warning"))
    assert first.key == extended.key == "spike\x1fbilling"


def test_an_escalation_or_a_gap_starts_a_new_episode() -> None:
    mark = EpisodeMark(window_to=NOW - timedelta(hours=2), severity="warning")
    assert _route(_rule(), event=_insight(), episodes={"r1": mark}).suppressed == [], "more than the gap apart"
    recent = EpisodeMark(window_to=NOW, severity="warning")
    escalated = _route(_rule(), event=_insight("critical"), episodes={"r1": recent})
    assert escalated.suppressed == [] and len(escalated.deliveries) == 1
    assert escalated.episodes[0].mark.severity == "critical" and escalated.episodes[0].event_id == "evt-i"


def test_an_insight_without_a_readable_window_is_never_suppressed_nor_marked() -> None:
    event = RoutedEvent("insight", "evt-x", {"type": "spike", "window": {"from": "soon"}})
    decision = _route(_rule(), event=event, episodes={"r1": EpisodeMark(NOW, "critical")})
    assert decision.suppressed == [] and decision.episodes == [] and len(decision.deliveries) == 1


def test_feedback_is_never_suppressed_by_episodes() -> None:
    decision = _route(_rule(), episodes={"r1": EpisodeMark(NOW + timedelta(days=1), "critical")})
    assert decision.suppressed == [] and decision.episodes == []


def test_a_suppressed_rule_takes_no_throttle_slot() -> None:
    mark = EpisodeMark(window_to=NOW, severity="critical")
    decision = _route(_rule(throttle=Throttle(limit=1, window_s=60)), event=_insight(), episodes={"r1": mark})
    assert decision.suppressed == ["r1"] and decision.windows == {} and decision.deliveries == []


def test_ids_are_deterministic_and_the_subject_comes_from_the_data() -> None:
    assert _route(_rule()).deliveries[0].id == _route(_rule()).deliveries[0].id == delivery_id_for("evt-1", "r1", 0)
    assert delivery_id_for("evt-1", "r1", 1) != delivery_id_for("evt-1", "r1", 0)
    assert subject_of("feedback", {"feedback_id": "f"}) == "f"
    assert subject_of("insight", {"insight_id": "i", "feedback_id": "f"}) == "i"
    assert subject_of("feedback", {}) is None
