"""Tracker changes (``tracker.v1``) from GitHub, Jira and Linear webhooks: each mapping (done, cancelled, reopened,
ignored), the signatures and Linear's replay window, the deterministic event ids; and the support-tool
conversation items carry. Pure: the project's own fixtures, signed in the test with hmac directly."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from feedbackloop.contracts import TrackerChange
from ingest.domain.connectors import CONNECTORS, ConnectorOptions, Delivery, Outcome, VerificationFailed
from ingest.domain.feedback import FeedbackIn, RedactionPolicy, normalize
from ingest.domain.pseudonym import Pseudonymizer
from ingest.service.tracker import tracker_event_id

SECRET = "tracker-secret-for-tests"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OPTIONS = ConnectorOptions()
OWN = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"


def payload(name: str) -> dict[str, Any]:
    return json.loads((OWN / name).read_bytes())  # type: ignore[no-any-return]


def mapped(source: str, body: dict[str, Any], event: str | None = None,
           options: ConnectorOptions = OPTIONS) -> Outcome:
    headers = {"x-github-event": event} if event else {}
    return CONNECTORS[source].map(body, Delivery(headers, json.dumps(body).encode(), received_at=NOW), options)


def only_change(outcome: Outcome) -> TrackerChange:
    assert outcome.ignored is None and len(outcome.changes) == 1, outcome
    return outcome.changes[0]


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# GitHub


def test_github_issue_closed_as_completed_is_done() -> None:
    outcome = mapped("github", payload("github/issues.closed.json"), "issues")
    change = only_change(outcome)
    assert not outcome.items, "a closed issue is not feedback"
    assert (change.issue_key, change.tracker, change.status, change.previous_status) == (
        "github:acme-oss/widgets#311", "github", "done", "open")
    assert (change.action, change.resolution) == ("closed", "completed")
    assert change.changed_at == datetime(2026, 1, 5, 11, 58, 41, tzinfo=UTC), "issue.closed_at"
    assert change.url == "https://github.com/acme-oss/widgets/issues/311"
    assert change.title == "Date picker ignores the locale"


@pytest.mark.parametrize(("reason", "status"), [
    (None, "done"), ("completed", "done"), ("not_planned", "cancelled"), ("duplicate", "cancelled"),
])
def test_github_state_reason_decides_done_or_cancelled(reason: str | None, status: str) -> None:
    body = payload("github/issues.closed.json")
    body["issue"]["state_reason"] = reason
    change = only_change(mapped("github", body, "issues"))
    assert (change.status, change.resolution) == (status, reason)


def test_github_reopened_is_open_again_and_the_repository_is_lower_cased() -> None:
    body = payload("github/issues.closed.json")
    body["action"] = "reopened"
    body["repository"]["full_name"] = "Acme-OSS/Widgets"
    body["issue"].update({"state": "open", "state_reason": "reopened", "closed_at": None,
                          "updated_at": "2026-01-06T09:00:00Z"})
    change = only_change(mapped("github", body, "issues"))
    assert (change.issue_key, change.status, change.previous_status, change.action) == (
        "github:acme-oss/widgets#311", "open", None, "reopened")
    assert change.changed_at == datetime(2026, 1, 6, 9, 0, tzinfo=UTC), "updated_at: a reopened issue has no closed_at"


def test_github_opened_gives_its_item_and_an_open_change() -> None:
    outcome = mapped("github", payload("github/issues.opened.json"), "issues")
    assert len(outcome.items) == 1 and outcome.items[0].source == "github"
    change = only_change(outcome)
    assert (change.status, change.action, change.previous_status) == ("open", "opened", None)
    assert change.changed_at == datetime(2026, 1, 4, 16, 20, tzinfo=UTC)


@pytest.mark.parametrize("action", ["edited", "labeled", "assigned", "deleted"])
def test_github_other_issue_actions_are_ignored(action: str) -> None:
    body = payload("github/issues.closed.json")
    body["action"] = action
    outcome = mapped("github", body, "issues")
    assert not outcome.changes and not outcome.items and action in (outcome.ignored or "")


def test_github_change_without_an_issue_number_is_ignored_with_the_reason() -> None:
    body = payload("github/issues.closed.json")
    del body["issue"]["number"]
    outcome = mapped("github", body, "issues")
    assert not outcome.changes and "issue number" in (outcome.ignored or "")


def test_github_change_timestamps_fall_back_to_the_arrival() -> None:
    body = payload("github/issues.closed.json")
    for field in ("closed_at", "updated_at", "created_at"):
        body["issue"].pop(field)
    assert only_change(mapped("github", body, "issues")).changed_at == NOW


# Jira


def test_jira_transition_to_done() -> None:
    change = only_change(mapped("jira", payload("jira/issue_updated.json")))
    assert (change.issue_key, change.tracker, change.status, change.previous_status) == (
        "jira:AUTH-7", "jira", "done", "in_progress")
    assert (change.action, change.resolution) == ("updated", "Done")
    assert change.url == "https://acme-test.atlassian.net/browse/AUTH-7", "the site of issue.self"
    assert change.changed_at == datetime(2026, 1, 5, 11, 58, tzinfo=UTC), "the event's timestamp (ms)"
    assert change.title == "Magic-link sign-in fails after the session times out"


@pytest.mark.parametrize("resolution", ["Won't Do", "won\u2019t fix", "Duplicate", "Cannot Reproduce", "Declined"])
def test_jira_done_without_a_fix_is_cancelled(resolution: str) -> None:
    body = payload("jira/issue_updated.json")
    body["issue"]["fields"]["resolution"]["name"] = resolution
    change = only_change(mapped("jira", body))
    assert (change.status, change.resolution) == ("cancelled", resolution)


def test_jira_reopened_is_open_and_was_done() -> None:
    body = payload("jira/issue_updated.json")
    body["issue"]["fields"]["status"] = {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}}
    body["issue"]["fields"]["resolution"] = None
    body["changelog"]["items"] = [
        {"field": "resolution", "fromString": "Done", "toString": None},
        {"field": "status", "fromString": "Done", "toString": "To Do"},
    ]
    change = only_change(mapped("jira", body))
    assert (change.status, change.previous_status, change.resolution) == ("open", "done", None)


def test_jira_previous_status_of_an_unknown_workflow_is_left_out_and_in_progress_is_kept() -> None:
    body = payload("jira/issue_updated.json")
    body["issue"]["fields"]["status"]["statusCategory"]["key"] = "indeterminate"
    body["changelog"]["items"] = [{"field": "status", "fromString": "Waiting for QA", "toString": "QA"}]
    change = only_change(mapped("jira", body))
    assert (change.status, change.previous_status) == ("in_progress", None)


def test_jira_previous_done_without_a_fix_was_cancelled() -> None:
    body = payload("jira/issue_updated.json")
    body["issue"]["fields"]["status"] = {"name": "Open", "statusCategory": {"key": "new"}}
    body["changelog"]["items"] = [{"field": "resolution", "fromString": "Won't Do"},
                                  {"field": "status", "fromString": "Closed"}]
    assert only_change(mapped("jira", body)).previous_status == "cancelled"


def test_jira_created_issue_is_a_change_without_a_changelog() -> None:
    body = payload("jira/issue_updated.json")
    body["webhookEvent"] = "jira:issue_created"
    body["issue"]["fields"].update(status={"name": "To Do", "statusCategory": {"key": "new"}}, resolution=None)
    del body["changelog"]
    change = only_change(mapped("jira", body))
    assert (change.status, change.action, change.previous_status) == ("open", "created", None)


def test_jira_resolution_only_change_is_taken() -> None:
    body = payload("jira/issue_updated.json")
    body["changelog"]["items"] = [{"field": "resolution", "fromString": None, "toString": "Done"}]
    assert only_change(mapped("jira", body)).status == "done"


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda b: b["changelog"].update(items=[{"field": "assignee", "fromString": None, "toString": "Priya"}]),
     "neither"),
    (lambda b: b.pop("changelog"), "neither"),
    (lambda b: b.update(webhookEvent="comment_created"), "comment_created"),
    (lambda b: b.update(webhookEvent="jira:issue_deleted"), "jira:issue_deleted"),
    (lambda b: b["issue"]["fields"]["status"]["statusCategory"].update(key="undefined"), "category"),
    (lambda b: b["issue"].update(key="not a key"), "issue key"),
])
def test_jira_events_that_are_no_status_change_are_ignored(edit: Any, reason: str) -> None:
    body = payload("jira/issue_updated.json")
    edit(body)
    outcome = mapped("jira", body)
    assert not outcome.changes and not outcome.items and reason in (outcome.ignored or ""), outcome


def test_jira_url_needs_a_web_origin() -> None:
    body = payload("jira/issue_updated.json")
    body["issue"]["self"] = "javascript:alert(1)"
    assert only_change(mapped("jira", body)).url is None


def test_jira_signature_is_sha256_hex_of_the_body() -> None:
    body = (OWN / "jira/issue_updated.json").read_bytes()
    jira = CONNECTORS["jira"]
    jira.verify(Delivery({"x-hub-signature": f"sha256={_hex(SECRET, body)}"}, body), SECRET, OPTIONS)
    for headers in ({"x-hub-signature": f"sha256={_hex('wrong', body)}"}, {"x-hub-signature": _hex(SECRET, body)},
                    {"x-hub-signature-256": f"sha256={_hex(SECRET, body)}"}):
        with pytest.raises(VerificationFailed) as failed:
            jira.verify(Delivery(headers, body), SECRET, OPTIONS)
        assert failed.value.check == "signature" and SECRET not in failed.value.detail


# Linear


def _linear(body: dict[str, Any], secret: str = SECRET, received_at: datetime = NOW) -> Delivery:
    raw = json.dumps(body).encode()
    return Delivery({"linear-signature": _hex(secret, raw)}, raw, received_at=received_at)


def test_linear_issue_moved_to_completed_is_done() -> None:
    change = only_change(mapped("linear", payload("linear/issue_updated.json")))
    assert (change.issue_key, change.tracker, change.status, change.previous_status) == (
        "linear:ENG-12", "linear", "done", None)
    assert (change.action, change.resolution) == ("update", "Done")
    assert change.url == "https://linear.app/acme/issue/ENG-12/csv-export-stops-at-1000-rows"
    assert change.changed_at == datetime(2026, 1, 5, 11, 59, 57, 412000, tzinfo=UTC), "data.updatedAt"


@pytest.mark.parametrize(("state_type", "name", "status"), [
    ("canceled", "Canceled", "cancelled"), ("started", "In Progress", "in_progress"), ("backlog", "Backlog", "open"),
    ("unstarted", "Todo", "open"), ("triage", "Triage", "open"), ("completed", "Shipped", "done"),
])
def test_linear_state_types(state_type: str, name: str, status: str) -> None:
    body = payload("linear/issue_updated.json")
    body["data"]["state"].update(type=state_type, name=name)
    change = only_change(mapped("linear", body))
    assert (change.status, change.resolution) == (status, name)


def test_linear_created_issue_is_a_change() -> None:
    body = payload("linear/issue_updated.json")
    body["action"] = "create"
    del body["updatedFrom"]
    body["data"]["state"].update(type="triage", name="Triage")
    assert (only_change(mapped("linear", body)).status, only_change(mapped("linear", body)).action) == (
        "open", "create")


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda b: b.update(updatedFrom={"title": "CSV export stops", "updatedAt": "2026-01-04T17:41:03.000Z"}),
     "state"),
    (lambda b: b.pop("updatedFrom"), "state"),
    (lambda b: b.update(type="Comment"), "Comment"),
    (lambda b: b.update(action="remove"), "remove"),
    (lambda b: b["data"]["state"].update(type="archived"), "archived"),
    (lambda b: b["data"].pop("identifier"), "identifier"),
])
def test_linear_events_that_are_no_state_change_are_ignored(edit: Any, reason: str) -> None:
    body = payload("linear/issue_updated.json")
    edit(body)
    outcome = mapped("linear", body)
    assert not outcome.changes and not outcome.items and reason in (outcome.ignored or ""), outcome


def test_linear_signature_and_replay_window() -> None:
    linear = CONNECTORS["linear"]
    body = payload("linear/issue_updated.json")  # webhookTimestamp: 2026-01-05T11:59:58Z
    linear.verify(_linear(body), SECRET, OPTIONS)
    with pytest.raises(VerificationFailed) as forged:
        linear.verify(_linear(body, secret="not-the-secret"), SECRET, OPTIONS)
    assert forged.value.check == "signature"
    for received in (NOW + timedelta(minutes=6), NOW - timedelta(minutes=6)):
        with pytest.raises(VerificationFailed) as stale:
            linear.verify(_linear(body, received_at=received), SECRET, OPTIONS)
        assert stale.value.check == "timestamp" and "webhookTimestamp" in stale.value.detail
    wide = ConnectorOptions(tolerance=timedelta(minutes=10))  # the configured window, not a fixed one
    linear.verify(_linear(body, received_at=NOW + timedelta(minutes=6)), SECRET, wide)
    narrow = ConnectorOptions(tolerance=timedelta(seconds=1))
    with pytest.raises(VerificationFailed):
        linear.verify(_linear(body, received_at=NOW + timedelta(seconds=5)), SECRET, narrow)
    for bad in (None, "1767614398000", True):
        unstamped = copy.deepcopy(body)
        unstamped["webhookTimestamp"] = bad
        with pytest.raises(VerificationFailed) as missing:
            linear.verify(_linear(unstamped), SECRET, OPTIONS)
        assert missing.value.check == "timestamp"


def test_linear_body_that_is_not_json_is_left_to_the_json_check() -> None:
    """Verified, so the endpoint answers it 400 (malformed JSON) like any source's, not 401."""
    raw = b'{"type": "Issue", '
    CONNECTORS["linear"].verify(Delivery({"linear-signature": _hex(SECRET, raw)}, raw, received_at=NOW), SECRET,
                                OPTIONS)


# Event ids


def test_the_same_change_told_twice_is_one_event_id() -> None:
    first = only_change(mapped("jira", payload("jira/issue_updated.json")))
    again = only_change(mapped("jira", payload("jira/issue_updated.json")))
    assert tracker_event_id(first) == tracker_event_id(again)
    elsewhere = first.model_copy(update={"changed_at": first.changed_at.astimezone(timezone(timedelta(hours=2)))})
    assert tracker_event_id(elsewhere) == tracker_event_id(first), "the same instant in another zone"
    reopened = first.model_copy(update={"status": "open"})
    later = first.model_copy(update={"changed_at": first.changed_at + timedelta(seconds=1)})
    other = first.model_copy(update={"issue_key": "jira:AUTH-8"})
    assert len({tracker_event_id(c) for c in (first, reopened, later, other)}) == 4


# Conversations


POLICY = RedactionPolicy(Pseudonymizer(b"conversation-test-key-0123456789"))


def test_a_conversation_is_published_as_given() -> None:
    item = FeedbackIn.model_validate({"source": "helpdesk", "external_id": "t-1", "text": "Export fails",
                                      "conversation": {"source": "zendesk", "id": "48213"}})
    raw = normalize(item, NOW, POLICY)
    assert raw.conversation is not None and (raw.conversation.source, raw.conversation.id) == ("zendesk", "48213")
    assert normalize(item.model_copy(update={"conversation": None}), NOW, POLICY).conversation is None


@pytest.mark.parametrize("conversation", [
    {"source": "zendesk", "id": ""}, {"source": "zendesk", "id": "48 213"}, {"source": "Zen Desk", "id": "1"},
    {"source": "zendesk", "id": "x" * 257}, {"source": "zendesk"}, {"source": "zendesk", "id": "1", "extra": 1},
])
def test_a_conversation_is_two_short_strings(conversation: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as invalid:
        FeedbackIn.model_validate({"source": "api", "external_id": "1", "text": "x", "conversation": conversation})
    assert all(error["loc"][0] == "conversation" for error in invalid.value.errors())


def test_a_zendesk_ticket_id_that_is_no_id_leaves_the_item_without_its_conversation() -> None:
    body = payload("zendesk/ticket_created.json")
    body["detail"]["id"] = "48 213"  # the item keeps it as its id; a spaced "ticket id" is no conversation
    outcome = mapped("zendesk", body)
    assert len(outcome.items) == 1 and outcome.items[0].conversation is None
