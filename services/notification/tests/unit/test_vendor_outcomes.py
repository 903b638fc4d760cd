"""What a support tool's or tracker's answer makes of an attempt: sent, retried (429 with Retry-After, 5xx, down)
or failed for good; and a reply never posted twice (the marker looked for first). The vendors are
``httpx.MockTransport`` handlers here; the integration tests use the HTTP stand-ins."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from feedbackloop.trackers import TrackerSettings
from notification.config import NotificationSettings
from notification.domain.loop import fan_out, marker
from notification.transports.base import Message
from notification.transports.intercom import IntercomSender
from notification.transports.tracker import TrackerSender
from notification.transports.zendesk import ZendeskSender

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


def _settings(**changes: Any) -> NotificationSettings:
    values: dict[str, Any] = {"zendesk_url": "https://acme.zendesk.test", "zendesk_email": "agent@acme.test",
                              "zendesk_token": "zd-token", "intercom_token": "ic-token", "intercom_admin_id": "42",
                              "intercom_api_url": "https://api.intercom.test"}
    values.update(changes)
    return NotificationSettings(**values)


def _payload() -> dict[str, Any]:
    data = {"insight_id": "i-1", "type": "loop_closed", "title": "Fixed", "severity": "info",
            "loop": {"link_id": "l", "issue": {"issue_key": "jira:AUTH-7", "tracker": "jira", "title": "Login fails",
                                               "url": "https://acme.atlassian.net/browse/AUTH-7", "status": "done"},
                     "customers": [{"id": "acme", "owner": "jane@vendor.test", "items": ["f-1"],
                                    "conversations": [{"source": "zendesk", "id": "812"},
                                                      {"source": "intercom", "id": "ic-1"}]}]}}
    return {"type": "insight", "rule": {"id": "r", "name": "tell", "team": "cs"},
            "data": fan_out("insight", data)[0].data, "event_id": "e"}


class Vendor:
    """Records requests and answers each with the next scripted response (the default when the script is out)."""

    def __init__(self, default: Handler, script: list[Handler] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.default = default
        self.script = list(script or [])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return (self.script.pop(0) if self.script else self.default)(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def _answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Handler:
    return lambda request: httpx.Response(status, json=body if body is not None else {}, headers=headers)


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def _zendesk_ok(comments: list[dict[str, Any]]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"comments": comments, "next_page": None})
        return httpx.Response(200, json={"ticket": {"id": 812}, "audit": {}})
    return handle


async def test_a_zendesk_internal_note_on_the_newest_ticket_with_its_marker() -> None:
    vendor = Vendor(_zendesk_ok([]))
    async with vendor.client() as client:
        sent = await ZendeskSender(client, _settings()).send(
            Message("d-1", _payload(), {"type": "zendesk", "public": False}))
    assert sent.succeeded and sent.detail == "zendesk ticket 812: internal note"
    read, put = vendor.requests
    assert (read.method, read.url.path, read.url.params["sort_order"]) == (
        "GET", "/api/v2/tickets/812/comments.json", "desc")
    assert (put.method, str(put.url)) == ("PUT", "https://acme.zendesk.test/api/v2/tickets/812.json")
    expected = "Basic " + base64.b64encode(b"agent@acme.test/token:zd-token").decode()
    assert read.headers["authorization"] == put.headers["authorization"] == expected
    comment = json.loads(put.content)["ticket"]["comment"]
    assert comment["public"] is False and marker("d-1") in comment["html_body"]
    assert "Login fails" in comment["html_body"]


async def test_a_zendesk_comment_already_carrying_the_marker_is_not_posted_again() -> None:
    vendor = Vendor(_zendesk_ok([{"id": 1, "body": "hello"}, {"id": 2, "html_body": f"<p>ref {marker('d-1')}</p>"}]))
    async with vendor.client() as client:
        sent = await ZendeskSender(client, _settings()).send(
            Message("d-1", _payload(), {"type": "zendesk"}, attempt=2))
    assert sent.succeeded and "marker was found" in str(sent.detail)
    assert [r.method for r in vendor.requests] == ["GET"]


@pytest.mark.parametrize(("answer", "status", "retryable", "retry_after"), [
    (_answer(429, {"error": "TooManyRequests"}, {"retry-after": "7"}), 429, True, 7.0),
    (_answer(503), 503, True, None),
    (_down, None, True, None),
    (_answer(404, {"error": "RecordNotFound"}), 404, False, None),
    (_answer(401, {"error": "Couldn't authenticate you"}), 401, False, None),
])
async def test_zendesk_answers_map_to_outcomes(answer: Handler, status: int | None, retryable: bool,
                                               retry_after: float | None) -> None:
    for script in ([answer], [_zendesk_ok([]), answer]):  # the read fails, or the post does
        vendor = Vendor(_zendesk_ok([]), script)
        async with vendor.client() as client:
            sent = await ZendeskSender(client, _settings()).send(Message("d-1", _payload(), {"type": "zendesk"}))
        assert (sent.succeeded, sent.status, sent.retryable, sent.retry_after) == (
            False, status, retryable, retry_after), sent
        assert "zd-token" not in str(sent.error)
        # a failed read posts nothing (never a blind reply); a failed post was the second request
        assert [r.method for r in vendor.requests] == (["GET"] if len(script) == 1 else ["GET", "PUT"])


async def test_zendesk_unconfigured_fails_for_good_naming_the_variables() -> None:
    async with Vendor(_zendesk_ok([])).client() as client:
        sent = await ZendeskSender(client, _settings(zendesk_token=None)).send(
            Message("d-1", _payload(), {"type": "zendesk"}))
    assert not sent.retryable and sent.error == "zendesk is not configured: set NOTIFICATION_ZENDESK_TOKEN"


def _intercom(parts: list[dict[str, Any]]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"type": "conversation", "id": "ic-1", "source": {"body": "<p>help</p>"},
                                             "conversation_parts": {"type": "conversation_part.list",
                                                                    "conversation_parts": parts,
                                                                    "total_count": len(parts)}})
        return httpx.Response(200, json={"type": "conversation", "id": "ic-1"})
    return handle


async def test_an_intercom_public_reply_as_the_admin() -> None:
    vendor = Vendor(_intercom([]))
    async with vendor.client() as client:
        sent = await IntercomSender(client, _settings()).send(
            Message("d-2", _payload(), {"type": "intercom", "public": True, "message": "Fixed: {issue_title}"}))
    assert sent.succeeded and sent.detail == "intercom conversation ic-1: reply"
    read, post = vendor.requests
    assert str(post.url) == "https://api.intercom.test/conversations/ic-1/reply"
    for request in (read, post):
        assert request.headers["authorization"] == "Bearer ic-token"
        assert request.headers["intercom-version"] == "2.11"
    body = json.loads(post.content)
    assert {k: body[k] for k in ("message_type", "type", "admin_id")} == {
        "message_type": "comment", "type": "admin", "admin_id": "42"}
    assert body["body"].startswith("<p>Fixed: Login fails</p>") and marker("d-2") in body["body"]


async def test_an_intercom_note_found_by_its_marker_is_not_posted_again() -> None:
    part = {"id": "p1", "part_type": "note", "body": f"<p>Fixed</p><p><small>ref {marker('d-2')}</small></p>",
            "author": {"type": "admin", "id": "42"}}
    vendor = Vendor(_intercom([part]))
    async with vendor.client() as client:
        sent = await IntercomSender(client, _settings()).send(Message("d-2", _payload(), {"type": "intercom"},
                                                                      attempt=2))
    assert sent.succeeded and [r.method for r in vendor.requests] == ["GET"]


async def test_intercom_429_then_success_is_retryable_then_sent() -> None:
    vendor = Vendor(_intercom([]), [_intercom([]), _answer(429, {"type": "error.list"}, {"retry-after": "2"})])
    async with vendor.client() as client:
        sender = IntercomSender(client, _settings())
        first = await sender.send(Message("d-2", _payload(), {"type": "intercom"}))
        second = await sender.send(Message("d-2", _payload(), {"type": "intercom"}, attempt=2))
    assert (first.status, first.retryable, first.retry_after) == (429, True, 2.0)
    assert second.succeeded
    assert [r.method for r in vendor.requests] == ["GET", "POST", "GET", "POST"]


async def test_a_reply_without_a_conversation_of_its_tool_fails_for_good() -> None:
    payload = _payload()
    payload["data"]["loop"]["customers"][0]["conversations"] = []
    async with Vendor(_intercom([])).client() as client:
        sent = await IntercomSender(client, _settings()).send(Message("d-2", payload, {"type": "intercom"}))
    assert not sent.succeeded and not sent.retryable and "no Intercom conversation" in str(sent.error)


def _spike_payload() -> dict[str, Any]:
    return {"type": "insight", "rule": {"id": "r", "name": "auth spikes", "team": "auth"}, "event_id": "e",
            "data": {"insight_id": "i-9", "type": "spike", "title": "Login spike", "severity": "critical",
                     "theme": "login", "metrics": {"observed": 30, "expected": 5},
                     "window": {"from": NOW.isoformat(), "to": NOW.isoformat()}, "evidence": ["a", "b", "c"]}}


async def test_tracker_errors_map_to_outcomes_and_the_created_issue_is_the_result() -> None:
    created = {"number": 7, "html_url": "https://github.test/acme/web/issues/7", "state": "open",
               "state_reason": None, "title": "Login spike", "body": "", "created_at": NOW.isoformat()}

    def github(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=[])
        return httpx.Response(201, json=created)

    vendor = Vendor(github, [_answer(429, {"message": "rate limited"}, {"retry-after": "3"}), _answer(401, {
        "message": "Bad credentials"})])
    settings = TrackerSettings(github_token="ghp_secret", github_api_url="https://github.test")
    channel = {"type": "tracker", "tracker": "github", "repository": "acme/web", "labels": ["feedback"]}
    async with vendor.client() as client:
        sender = TrackerSender(client, settings, dashboard_url="http://dashboard.test/")
        limited = await sender.send(Message("d-3", _spike_payload(), channel))
        refused = await sender.send(Message("d-3", _spike_payload(), channel, attempt=2))
        sent = await sender.send(Message("d-3", _spike_payload(), channel, attempt=3))
        unconfigured = await TrackerSender(client, TrackerSettings(), dashboard_url="").send(
            Message("d-3", _spike_payload(), {"type": "tracker", "tracker": "linear", "team": "ENG"}))
    assert (limited.status, limited.retryable, limited.retry_after) == (429, True, 3.0)
    assert (refused.status, refused.retryable) == (401, False) and "ghp_secret" not in str(refused.error)
    assert sent.succeeded and sent.detail == "github:acme/web#7 https://github.test/acme/web/issues/7"
    post = vendor.requests[-1]
    body = json.loads(post.content)
    assert body["title"] == "Login spike" and body["labels"] == ["feedback"]
    assert "Evidence: 3 feedback items." in body["body"] and "d-3" in body["body"]
    assert not unconfigured.retryable and "TRACKER_LINEAR_API_KEY" in str(unconfigured.error)
