"""The tracker clients against the vendor stand-ins over real HTTP: idempotent creation, faults, auth, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from feedbackloop.contracts.events import TrackerName
from feedbackloop.trackers import (
    IssueDraft,
    TrackerClient,
    TrackerError,
    TrackerIssue,
    TrackerSettings,
    marker_comment,
    tracker_client,
)
from feedbackloop_testing import serve_app
from feedbackloop_testing.standins import StandinServer

TARGETS: dict[TrackerName, str] = {"github": "acme/web", "jira": "AUTH", "linear": "ENG"}
TRACKERS: list[TrackerName] = ["github", "jira", "linear"]


def settings_for(standins: StandinServer, **override: str) -> TrackerSettings:
    env = {k.removeprefix("TRACKER_").lower(): v for k, v in standins.env().items() if k.startswith("TRACKER_")}
    return TrackerSettings(**{**env, **override})


def draft(tracker: TrackerName, marker: str = "link-1") -> IssueDraft:
    return IssueDraft(target=TARGETS[tracker], title="Login fails with SSO", marker=marker, labels=("feedback",),
                      body="12 customers report it.\n\n- [item](https://app.example/feedback/1)\n- another one")


async def with_retries(call: Callable[[], Awaitable[TrackerIssue]], attempts: int = 5) -> tuple[TrackerIssue,
                                                                                                list[TrackerError]]:
    """A caller's retry loop (without its waits): retryable errors are tried again, the rest raised."""
    seen: list[TrackerError] = []
    for _ in range(attempts):
        try:
            return await call(), seen
        except TrackerError as exc:
            if not exc.retryable:
                raise
            seen.append(exc)
    raise AssertionError(f"still failing after {attempts} attempts: {seen}")


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.mark.parametrize("tracker", TRACKERS)
async def test_create_get_and_find_by_marker(standins: StandinServer, http: httpx.AsyncClient,
                                             tracker: TrackerName) -> None:
    client = tracker_client(tracker, settings_for(standins), http)
    created = await client.create_issue(draft(tracker))
    assert created.ref.tracker == tracker and created.status == "open" and created.title == "Login fails with SSO"
    assert created.created_at is not None
    again = await client.create_issue(draft(tracker))
    assert again == created
    assert await client.get_issue(created.ref) == created
    other = await client.create_issue(draft(tracker, marker="link-10"))  # a marker that extends the first one
    assert other.ref.key != created.ref.key
    held = standins.issues(tracker)
    assert len(held) == 2
    if tracker == "jira":
        assert sorted(held[0]["fields"]["labels"]) == ["feedback", "feedbackloop-link-1"]
        assert held[0]["fields"]["description"]["type"] == "doc"
    else:
        body = held[0]["body"] if tracker == "github" else held[0]["description"]
        assert marker_comment("link-1") in body and "12 customers" in body


@pytest.mark.parametrize("tracker", TRACKERS)
async def test_rate_limited_twice_then_one_issue(standins: StandinServer, http: httpx.AsyncClient,
                                                 tracker: TrackerName) -> None:
    client = tracker_client(tracker, settings_for(standins), http)
    standins.fault(tracker, "status", status=429, retry_after=1, times=2)
    issue, errors = await with_retries(lambda: client.create_issue(draft(tracker)))
    assert [(e.status, e.retryable, e.retry_after) for e in errors] == [(429, True, 1.0)] * 2
    assert len(standins.issues(tracker)) == 1 and issue.status == "open"


@pytest.mark.parametrize("tracker", TRACKERS)
async def test_a_lost_answer_then_a_retry_makes_one_issue(standins: StandinServer, http: httpx.AsyncClient,
                                                          tracker: TrackerName) -> None:
    client = tracker_client(tracker, settings_for(standins), http)
    standins.fault(tracker, "lose_answer")
    issue, errors = await with_retries(lambda: client.create_issue(draft(tracker)))
    assert [e.status for e in errors] == [502]
    held = standins.issues(tracker)
    assert len(held) == 1
    assert issue.ref.key.endswith("#1" if tracker == "github" else "-1")


@pytest.mark.parametrize("tracker", TRACKERS)
async def test_a_dropped_connection_is_retryable(standins: StandinServer, http: httpx.AsyncClient,
                                                 tracker: TrackerName) -> None:
    client = tracker_client(tracker, settings_for(standins), http)
    standins.fault(tracker, "down", times=1)
    _, errors = await with_retries(lambda: client.create_issue(draft(tracker)))
    assert len(errors) == 1 and errors[0].status is None and errors[0].retryable
    assert next(r["status"] for r in standins.requests(tracker)) == "dropped"
    assert len(standins.issues(tracker)) == 1


@pytest.mark.parametrize(("tracker", "variable", "bad"), [
    ("github", "github_token", "ghp_wrong_secret_value"), ("jira", "jira_token", "jira-wrong-secret-value"),
    ("linear", "linear_api_key", "lin_api_wrong_secret_value")])
async def test_a_bad_credential_is_final_and_never_quoted(standins: StandinServer, http: httpx.AsyncClient,
                                                          tracker: TrackerName, variable: str, bad: str) -> None:
    client = tracker_client(tracker, settings_for(standins, **{variable: bad}), http)
    with pytest.raises(TrackerError) as caught:
        await client.create_issue(draft(tracker))
    assert caught.value.status == 401 and not caught.value.retryable
    assert bad not in str(caught.value) and base64.b64encode(f"standin@example.com:{bad}".encode()).decode() \
        not in str(caught.value)
    assert standins.issues(tracker) == []


async def test_not_found_and_invalid_answers_are_final(standins: StandinServer, http: httpx.AsyncClient) -> None:
    settings = settings_for(standins)
    standins.missing("github", "acme/gone")
    with pytest.raises(TrackerError, match="404: Not Found") as caught:
        await tracker_client("github", settings, http).create_issue(
            IssueDraft(target="acme/gone", title="t", body="b", marker="m"))
    assert not caught.value.retryable
    with pytest.raises(TrackerError, match="issuetype: Specify a valid issue type") as caught:
        await tracker_client("jira", settings, http).create_issue(
            IssueDraft(target="AUTH", title="t", body="b", marker="m", issue_type="Nonsense"))
    assert caught.value.status == 400 and not caught.value.retryable
    standins.missing("linear", "GONE")
    with pytest.raises(TrackerError, match="no team") as caught:
        await tracker_client("linear", settings, http).create_issue(
            IssueDraft(target="GONE", title="t", body="b", marker="m"))
    assert not caught.value.retryable


SECRETS = {"github": "gh-hook-secret", "jira": "jira-hook-secret", "linear": "linear-hook-secret"}


def verified(tracker: str, headers: dict[str, str], body: bytes) -> bool:
    digest = hmac.new(SECRETS[tracker].encode(), body, hashlib.sha256).hexdigest()
    given = {"github": headers.get("x-hub-signature-256"), "jira": headers.get("x-hub-signature"),
             "linear": headers.get("linear-signature")}[tracker]
    expected = digest if tracker == "linear" else f"sha256={digest}"
    return given is not None and hmac.compare_digest(given, expected)


@pytest.mark.parametrize(("tracker", "outcome", "status"), [
    ("github", "done", "done"), ("github", "cancelled", "cancelled"), ("jira", "done", "done"),
    ("jira", "cancelled", "cancelled"), ("linear", "done", "done"), ("linear", "cancelled", "cancelled")])
async def test_closing_fires_a_signed_webhook(standins: StandinServer, http: httpx.AsyncClient, tracker: TrackerName,
                                              outcome: Any, status: str) -> None:
    received: list[tuple[str, dict[str, str], bytes]] = []
    receiver = FastAPI()

    @receiver.post("/v1/webhooks/{source}", status_code=202)
    async def hook(source: str, request: Request) -> dict[str, bool]:
        received.append((source, dict(request.headers), await request.body()))
        return {"ok": True}

    async with serve_app(receiver) as url:
        standins.configure_webhooks(f"{url}/v1/webhooks", **{f"{t}_secret": s for t, s in SECRETS.items()})
        client = tracker_client(tracker, settings_for(standins), http)
        issue = await client.create_issue(draft(tracker))
        delivery = await standins.close_issue(issue.ref.key, outcome)
        assert delivery is not None and delivery["status"] == 202 and delivery["issue"] == issue.ref.key
        assert (await client.get_issue(issue.ref)).status == status
        assert await standins.close_issue(issue.ref.key, outcome) is None  # no change, no webhook
        reopened = await standins.reopen_issue(issue.ref.key)
        assert reopened is not None and reopened["status"] == 202
        assert (await client.get_issue(issue.ref)).status == "open"

    assert [r[0] for r in received] == [tracker, tracker]
    _source, headers, body = received[0]
    assert verified(tracker, headers, body)
    assert not verified(tracker, {**headers, "x-hub-signature-256": "sha256=0", "x-hub-signature": "sha256=0",
                                  "linear-signature": "0"}, body)
    payload = httpx.Response(200, content=body).json()
    if tracker == "github":
        assert headers["x-github-event"] == "issues" and payload["action"] == "closed"
        assert payload["repository"]["full_name"] == "acme/web"
        assert payload["issue"]["state_reason"] == ("completed" if outcome == "done" else "not_planned")
    elif tracker == "jira":
        assert payload["webhookEvent"] == "jira:issue_updated"
        assert {i["field"] for i in payload["changelog"]["items"]} == {"status", "resolution"}
        assert payload["issue"]["fields"]["status"]["statusCategory"]["key"] == "done"
    else:
        assert payload["type"] == "Issue" and payload["action"] == "update" and "stateId" in payload["updatedFrom"]
        assert payload["data"]["state"]["type"] == ("completed" if outcome == "done" else "canceled")
        assert isinstance(payload["webhookTimestamp"], int)


async def test_a_vendor_patch_closes_and_fires_too(standins: StandinServer, http: httpx.AsyncClient) -> None:
    standins.configure_webhooks("http://127.0.0.1:9/nowhere")  # nothing listens: the failure is recorded
    issue = await tracker_client("github", settings_for(standins), http).create_issue(draft("github"))
    answer = await http.patch(f"{standins.url}/github/repos/acme/web/issues/1", json={"state": "closed"},
                              headers={"Authorization": "Bearer ghp_standin"})
    assert answer.status_code == 200 and answer.json()["state_reason"] == "completed"
    [delivery] = standins.webhooks()
    assert delivery["issue"] == issue.ref.key and delivery["status"] is None and delivery["error"]


async def test_zendesk_comments(standins: StandinServer, http: httpx.AsyncClient) -> None:
    env = standins.env()
    auth = base64.b64encode(f"{env['NOTIFICATION_ZENDESK_EMAIL']}/token:{env['NOTIFICATION_ZENDESK_TOKEN']}"
                            .encode()).decode()
    base, headers = env["NOTIFICATION_ZENDESK_URL"], {"Authorization": f"Basic {auth}"}
    note = {"ticket": {"comment": {"html_body": "<p>Fixed in 2.3</p><!-- feedbackloop:d1 -->", "public": False}}}
    assert (await http.put(f"{base}/api/v2/tickets/7.json", json=note)).status_code == 401
    answer = await http.put(f"{base}/api/v2/tickets/7.json", json=note, headers=headers)
    assert answer.status_code == 200 and answer.json()["audit"]["events"][0]["public"] is False
    bad = await http.put(f"{base}/api/v2/tickets/7.json", json={"ticket": {"comment": {"body": ""}}},
                         headers=headers)
    assert bad.status_code == 422 and bad.json()["error"] == "RecordInvalid"
    standins.fault("zendesk", "lose_answer")
    lost = await http.put(f"{base}/api/v2/tickets/7.json", json={"ticket": {"comment": {"body": "Second"}}},
                          headers=headers)
    assert lost.status_code == 502
    listed = (await http.get(f"{base}/api/v2/tickets/7/comments.json", headers=headers)).json()
    assert [c["body"] for c in listed["comments"]] == ["Fixed in 2.3", "Second"] and listed["next_page"] is None
    assert "feedbackloop:d1" in listed["comments"][0]["html_body"]
    assert [c["body"] for c in standins.comments(7)] == ["Fixed in 2.3", "Second"]
    standins.missing("zendesk", 8)
    assert (await http.get(f"{base}/api/v2/tickets/8/comments.json", headers=headers)).status_code == 404


async def test_intercom_replies(standins: StandinServer, http: httpx.AsyncClient) -> None:
    env = standins.env()
    base = env["NOTIFICATION_INTERCOM_API_URL"]
    headers = {"Authorization": f"Bearer {env['NOTIFICATION_INTERCOM_TOKEN']}", "Intercom-Version": "2.11"}
    reply = {"message_type": "note", "type": "admin", "admin_id": env["NOTIFICATION_INTERCOM_ADMIN_ID"],
             "body": "<p>Shipped</p>"}
    unauthorized = await http.post(f"{base}/conversations/55/reply", json=reply)
    assert unauthorized.status_code == 401 and unauthorized.json()["type"] == "error.list"
    standins.fault("intercom", "status", status=429, retry_after=3)
    limited = await http.post(f"{base}/conversations/55/reply", json=reply, headers=headers)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    answer = await http.post(f"{base}/conversations/55/reply", json=reply, headers=headers)
    assert answer.status_code == 200
    assert answer.json()["conversation_parts"]["conversation_parts"][0]["part_type"] == "note"
    missing_body = await http.post(f"{base}/conversations/55/reply", json={**reply, "body": ""}, headers=headers)
    assert missing_body.status_code == 400
    got = (await http.get(f"{base}/conversations/55", headers=headers)).json()
    assert got["conversation_parts"]["total_count"] == 1
    assert [p["body"] for p in standins.conversation_parts("55")] == ["<p>Shipped</p>"]


def test_the_command_line_refuses_bad_flags() -> None:
    run = subprocess.run([sys.executable, "-m", "feedbackloop_testing.standins", "--port", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "--port" in run.stderr


def test_clients_satisfy_the_protocol(standins: StandinServer) -> None:
    clients: list[TrackerClient] = [tracker_client(t, settings_for(standins), httpx.AsyncClient()) for t in TRACKERS]
    assert [c.tracker for c in clients] == TRACKERS
