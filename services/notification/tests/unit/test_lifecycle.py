"""The delivery state machine and channel health: each attempt outcome, pause, resume, give up. No I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from feedbackloop.contracts import Insight
from notification.domain.health import channel_paused_insight, health_after, pause_event_id
from notification.domain.lifecycle import (
    AttemptResult,
    DeliveryState,
    DeliveryStatus,
    Outcome,
    OutcomeKind,
    Transition,
    after_attempt,
    given_up,
    paused,
    requeued,
)
from notification.domain.messages import summarize
from notification.domain.rules import matches, validate_match
from notification.transports.base import SendOutcome

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SCHEDULE = (0.0, 5.0, 300.0)
PENDING = DeliveryState(DeliveryStatus.PENDING, attempts=0, next_attempt_at=NOW)


def _after(outcome: Outcome, state: DeliveryState = PENDING, attempt: int | None = None) -> Transition | None:
    return after_attempt(state, state.attempts + 1 if attempt is None else attempt, outcome, now=NOW,
                         schedule=SCHEDULE, jitter=0.0, rand=lambda: 0.5)


def test_sent_succeeds() -> None:
    done = _after(Outcome(OutcomeKind.SENT))
    assert done is not None and done.result is AttemptResult.SUCCEEDED and done.settled
    assert done.state == DeliveryState(DeliveryStatus.SUCCEEDED, 1, 0, None, NOW)


def test_a_retryable_failure_is_due_again_on_the_schedule() -> None:
    again = _after(Outcome(OutcomeKind.RETRYABLE))
    assert again is not None and again.result is AttemptResult.RETRY and not again.settled
    assert again.state == DeliveryState(DeliveryStatus.PENDING, 1, 0, NOW + timedelta(seconds=5))


def test_a_longer_retry_after_wins_and_a_shorter_one_does_not() -> None:
    later = _after(Outcome(OutcomeKind.RETRYABLE, retry_after=120.0))
    sooner = _after(Outcome(OutcomeKind.RETRYABLE, retry_after=1.0))
    assert later is not None and later.state.next_attempt_at == NOW + timedelta(seconds=120)
    assert sooner is not None and sooner.state.next_attempt_at == NOW + timedelta(seconds=5)


def test_a_retryable_failure_gives_up_once_the_schedule_is_spent() -> None:
    last = DeliveryState(DeliveryStatus.PENDING, attempts=2, next_attempt_at=NOW)
    failed = _after(Outcome(OutcomeKind.RETRYABLE, retry_after=10.0), last)
    assert failed is not None and failed.result is AttemptResult.FAILED
    assert failed.state == DeliveryState(DeliveryStatus.FAILED, 3, 0, None)


def test_the_schedule_counts_from_the_last_manual_retry() -> None:
    retried = DeliveryState(DeliveryStatus.PENDING, attempts=3, schedule_start=3, next_attempt_at=NOW)
    again = _after(Outcome(OutcomeKind.RETRYABLE), retried)
    assert again is not None and again.state.next_attempt_at == NOW + timedelta(seconds=5)
    assert again.state.attempts == 4


def test_a_permanent_failure_fails_at_once() -> None:
    failed = _after(Outcome(OutcomeKind.PERMANENT))
    assert failed is not None and failed.result is AttemptResult.FAILED
    assert failed.state == DeliveryState(DeliveryStatus.FAILED, 1, 0, None)


def test_a_gone_channel_fails_without_counting_an_attempt() -> None:
    failed = _after(Outcome(OutcomeKind.GONE))
    assert failed is not None and failed.result is AttemptResult.FAILED
    assert failed.state.status is DeliveryStatus.FAILED and failed.state.attempts == 0


@pytest.mark.parametrize("state, attempt", [
    (PENDING, 2),  # another sender recorded attempt 1 already (its lease ran out)
    (DeliveryState(DeliveryStatus.SUCCEEDED, 1), 2),
    (DeliveryState(DeliveryStatus.PAUSED, 0), 1),
    (DeliveryState(DeliveryStatus.FAILED, 0), 1),
])
def test_a_stale_attempt_changes_nothing(state: DeliveryState, attempt: int) -> None:
    assert _after(Outcome(OutcomeKind.SENT), state, attempt) is None


def test_pause_resume_retry_and_give_up() -> None:
    held = paused(PENDING)
    assert held == DeliveryState(DeliveryStatus.PAUSED, 0, 0, None)
    assert paused(DeliveryState(DeliveryStatus.SUCCEEDED, 1)).status is DeliveryStatus.SUCCEEDED
    failed = DeliveryState(DeliveryStatus.FAILED, attempts=4)
    assert requeued(failed, NOW) == DeliveryState(DeliveryStatus.PENDING, 4, 4, NOW)
    assert requeued(held, NOW) == DeliveryState(DeliveryStatus.PENDING, 0, 0, NOW)
    assert requeued(PENDING, NOW) is None
    assert given_up(PENDING).status is given_up(held).status is DeliveryStatus.FAILED
    assert given_up(PENDING).next_attempt_at is None
    sent = DeliveryState(DeliveryStatus.SUCCEEDED, 1)
    assert given_up(sent) == sent


def test_statuses_are_stored_as_their_values() -> None:
    assert [s.value for s in DeliveryStatus] == ["pending", "succeeded", "failed", "digested", "paused", "skipped"]
    assert DeliveryStatus.PENDING == "pending" and f"{DeliveryStatus.PAUSED}" == "paused"


@pytest.mark.parametrize("sent, kind", [
    (SendOutcome(200), OutcomeKind.SENT),
    (SendOutcome(503, "HTTP 503", retry_after=30.0, retryable=True), OutcomeKind.RETRYABLE),
    (SendOutcome(None, "ConnectError", retryable=True), OutcomeKind.RETRYABLE),
    (SendOutcome(404, "HTTP 404"), OutcomeKind.PERMANENT),
    (SendOutcome(None, "refused target"), OutcomeKind.PERMANENT),
])
def test_a_transport_outcome_maps_onto_the_state_machine(sent: SendOutcome, kind: OutcomeKind) -> None:
    assert sent.outcome().kind is kind
    assert sent.outcome().retry_after == (sent.retry_after if kind is OutcomeKind.RETRYABLE else None)


def test_failures_in_a_row_pause_a_channel_at_the_threshold() -> None:
    assert health_after(0, False, False, 3).consecutive_failures == 1
    assert not health_after(1, False, False, 3).pause
    assert health_after(2, False, False, 3).pause
    assert not health_after(5, True, False, 3).pause, "a paused channel is not paused again"
    assert not health_after(9, False, False, 0).pause, "threshold 0 never pauses"
    assert health_after(2, False, True, 3).consecutive_failures == 0
    assert health_after(3, True, True, 3).consecutive_failures == 3, "only a resume resets a paused channel"


def test_the_channel_paused_event_has_a_type_of_its_own() -> None:
    rule_id = str(uuid.uuid4())
    insight = channel_paused_insight(rule_id=rule_id, rule_name="billing bugs", team="billing", channel_index=1,
                                     channel_type="webhook", shown_url="https://hooks.example.com/***", failures=5,
                                     last_error="HTTP 404: gone", paused_at=NOW, held=3)
    data = insight.model_dump(mode="json", by_alias=True)
    assert data["type"] == "channel_paused" and data["severity"] == "warning"
    assert data["metrics"] == {"consecutive_failures": 5, "held_deliveries": 3}
    assert data["paused_channel"] == {"rule_id": rule_id, "rule_name": "billing bugs", "team": "billing", "index": 1,
                                      "type": "webhook", "target": "https://hooks.example.com/***",
                                      "last_error": "HTTP 404: gone"}
    assert data["window"] == {"from": NOW.isoformat().replace("+00:00", "Z"),
                              "to": NOW.isoformat().replace("+00:00", "Z")}
    again = channel_paused_insight(rule_id=rule_id, rule_name="x", team="y", channel_index=1, channel_type="webhook",
                                   shown_url="?", failures=5, last_error=None, paused_at=NOW, held=0)
    assert again.insight_id == insight.insight_id, "one pause is one event"
    assert pause_event_id(rule_id, 1, NOW) == pause_event_id(rule_id, 1, NOW) != pause_event_id(rule_id, 0, NOW)


def test_notification_rules_can_route_the_channel_paused_event_to_a_team() -> None:
    insight = channel_paused_insight(rule_id=str(uuid.uuid4()), rule_name="billing bugs", team="billing",
                                     channel_index=0, channel_type="slack", shown_url="https://hooks.slack.com/***",
                                     failures=5, last_error=None, paused_at=NOW, held=0)
    data = insight.model_dump(mode="json", by_alias=True)
    match = {"all": [{"field": "type", "op": "eq", "value": "channel_paused"},
                     {"field": "paused_channel.team", "op": "eq", "value": "billing"}]}
    validate_match(match)  # the fields are known to the catalog, so a rule may name them
    assert matches(match, "insight", data)
    assert not matches({"all": [{"field": "type", "op": "eq", "value": "kpi_drop"}]}, "insight", data)
    assert "Rule" in dict(summarize({"type": "insight", "data": data}, "").facts)


def test_the_contract_requires_the_channel_of_a_channel_paused_insight() -> None:
    with pytest.raises(ValidationError, match="paused_channel"):
        Insight.model_validate({"insight_id": str(uuid.uuid4()), "type": "channel_paused", "title": "t",
                                "window": {"from": NOW, "to": NOW}, "severity": "warning", "created_at": NOW})
