"""Tracker webhooks (GitHub, Jira, Linear) through the real app, store and broker: each signed its vendor's way,
answered 202 with ``tracker_changes``, published on ``tracker.v1`` (a redelivery is the same, single event), stored
in one transaction with the delivery's items; and support-tool conversations on ``feedback.raw.v1``."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from feedbackloop.contracts import FEEDBACK_RAW, TRACKER
from feedbackloop.db import create_engine
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import query_store, read_events, serve_app, store_url
from ingest.config import IngestSettings
from ingest.main import create_app
from ingest.service import tracker_event_id

SECRET = "tracker-integration-secret"
OWN = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
CLOSED = ("github:acme-oss/widgets#311", "done")
OPENED = ("github:acme-oss/widgets#311", "open")
JIRA = ("jira:AUTH-7", "done")
LINEAR = ("linear:ENG-12", "done")


def _hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(name: str) -> tuple[bytes, dict[str, str]]:
    body = (OWN / "github" / name).read_bytes()
    return body, {"x-github-event": "issues", "x-github-delivery": "d-1", "x-hub-signature-256": f"sha256={_hex(body)}"}


def jira(secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = (OWN / "jira/issue_updated.json").read_bytes()
    return body, {"x-hub-signature": f"sha256={_hex(body, secret)}", "x-atlassian-webhook-identifier": "w-1"}


def linear(sent_ms: int | None = None) -> tuple[bytes, dict[str, str]]:
    payload = json.loads((OWN / "linear/issue_updated.json").read_bytes())
    payload["webhookTimestamp"] = sent_ms if sent_ms is not None else int(time.time() * 1000)
    body = json.dumps(payload).encode()
    return body, {"linear-signature": _hex(body), "content-type": "application/json"}


def zendesk(name: str) -> tuple[bytes, dict[str, str]]:
    body = (OWN / "zendesk" / name).read_bytes()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = base64.b64encode(hmac.new(SECRET.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return body, {"x-zendesk-webhook-signature": sig, "x-zendesk-webhook-signature-timestamp": stamp}


def _settings(tmp_path: Path, kafka: KafkaSettings, common: CommonSettings) -> IngestSettings:
    return IngestSettings(database_url=store_url(tmp_path, "ingest"), kafka=kafka, common=common,
                          github_secret=SECRET, jira_secret=SECRET, linear_secret=SECRET, zendesk_secret=SECRET,
                          github_repositories="someone/else")  # the allow-list governs feedback only


async def test_tracker_changes_are_answered_and_published_once_on_tracker_v1(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
) -> None:
    settings = _settings(tmp_path, kafka_settings, common_settings)
    auth = {"authorization": f"Bearer {admin_key}"}
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def post(source: str, signed: tuple[bytes, dict[str, str]]) -> httpx.Response:
            return await client.post(f"/v1/webhooks/{source}", content=signed[0], headers=signed[1])

        opened = await post("github", github("issues.opened.json"))
        closed = await post("github", github("issues.closed.json"))
        jira_first = await post("jira", jira())
        jira_again = await post("jira", jira())  # the vendor redelivers
        linear_answer = await post("linear", linear())
        forged = await post("jira", jira(secret="not-the-secret"))
        stale = await post("linear", linear(int(time.time() * 1000) - 10 * 60 * 1000))
        sources = (await client.get("/v1/sources", headers=auth)).json()["items"]
        metrics = (await client.get("/metrics")).text
        events = await read_events(
            kafka_settings, TRACKER, what="the four tracker changes",
            until=lambda evs: {(e.data.issue_key, e.data.status) for e in evs} >= {OPENED, CLOSED, JIRA, LINEAR})

    assert opened.status_code == 202, opened.text
    assert opened.json() == {"feedback_ids": [], "tracker_changes": [OPENED[0]]}, "not an allowed repository"
    assert closed.status_code == 202 and closed.json() == {"feedback_ids": [], "tracker_changes": [CLOSED[0]]}
    assert jira_first.status_code == 202 and jira_first.json() == {"feedback_ids": [], "tracker_changes": [JIRA[0]]}
    assert jira_again.json() == jira_first.json()
    assert linear_answer.status_code == 202, linear_answer.text
    assert linear_answer.json()["tracker_changes"] == [LINEAR[0]]
    assert forged.status_code == 401 and forged.json()["check"] == "signature" and SECRET not in forged.text
    assert stale.status_code == 401 and stale.json()["check"] == "timestamp"

    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)) == 4, [(e.data.issue_key, e.data.status) for e in events]
    for event in events:
        assert event.id == tracker_event_id(event.data) and event.subject == event.data.issue_key
        assert event.type == "feedbackloop.tracker.v1"
    jira_event = next(e.data for e in events if e.data.tracker == "jira")
    assert jira_event.url == "https://acme-test.atlassian.net/browse/AUTH-7" and jira_event.previous_status == (
        "in_progress")
    # the redelivery is the same event: one outbox row per change, whatever the vendor retries
    rows = await query_store(settings.database_url,
                             "SELECT event_id, COUNT(*) FROM outbox WHERE topic = 'tracker.v1' GROUP BY event_id")
    assert sorted(rows) == sorted((i, 1) for i in ids)

    by_source = {s["source"]: s for s in sources}
    assert by_source["jira"]["secret_variable"] == "INGEST_JIRA_SECRET" and by_source["jira"]["configured"] is True
    assert by_source["linear"]["secret_variable"] == "INGEST_LINEAR_SECRET"
    assert by_source["jira"]["publishes"] == ["tracker.v1"] and by_source["jira"]["channel"] is None
    assert by_source["github"]["publishes"] == ["feedback.raw.v1", "tracker.v1"]
    assert by_source["jira"]["tracker_changes_24h"] == 2 and by_source["jira"]["rejections_24h"] == {"signature": 1}
    assert by_source["linear"]["rejections_24h"] == {"timestamp": 1}
    assert 'feedbackloop_ingest_tracker_changes_total{service="ingest",source="jira",status="done"} 2.0' in metrics


async def test_items_and_tracker_changes_of_a_delivery_are_stored_together_or_not_at_all(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings,
) -> None:
    settings = _settings(tmp_path, kafka_settings, common_settings).model_copy(update={"github_repositories": ""})
    url = settings.database_url
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    # the store refuses tracker.v1 outbox rows: written after the delivery's item, in the same transaction
    refuse, drop = _refuse_tracker_rows(dialect)
    async with serve_app(create_app(settings)) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        body, headers = github("issues.opened.json")
        await _ddl(url, refuse)
        failed = await client.post("/v1/webhooks/github", content=body, headers=headers)
        left = await query_store(url, "SELECT COUNT(*) FROM feedback_items")
        await _ddl(url, drop)
        redelivered = await client.post("/v1/webhooks/github", content=body, headers=headers)

    assert failed.status_code == 503 and failed.headers["retry-after"] == "1", failed.text
    assert left == [(0,)], "the item went back with its tracker change"
    assert redelivered.status_code == 202 and len(redelivered.json()["feedback_ids"]) == 1
    assert redelivered.json()["tracker_changes"] == [OPENED[0]]
    rows = await query_store(url, "SELECT topic, COUNT(*) FROM outbox GROUP BY topic")
    assert dict(rows) == {"feedback.raw.v1": 1, "tracker.v1": 1}


async def test_support_conversations_travel_with_their_items(
    tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
) -> None:
    settings = _settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        ticket_body, ticket_headers = zendesk("ticket_created.json")
        ticket = await client.post("/v1/webhooks/zendesk", content=ticket_body, headers=ticket_headers)
        comment_body, comment_headers = zendesk("ticket_comment_added.json")
        comment = await client.post("/v1/webhooks/zendesk", content=comment_body, headers=comment_headers)
        api = await client.post("/v1/feedback", headers={"authorization": f"Bearer {admin_key}"}, json={
            "source": "helpdesk", "external_id": "hd-1", "text": "The export stops at 1,000 rows",
            "conversation": {"source": "zendesk", "id": "48299"}})
        invalid = await client.post("/v1/feedback", headers={"authorization": f"Bearer {admin_key}"}, json={
            "source": "helpdesk", "external_id": "hd-2", "text": "x", "conversation": {"source": "zendesk", "id": ""}})
        events = await read_events(kafka_settings, FEEDBACK_RAW, what="three items",
                                   until=lambda evs: len(evs) >= 3)

    assert [a.status_code for a in (ticket, comment, api)] == [202] * 3, [ticket.text, comment.text, api.text]
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"].startswith("conversation"), invalid.text
    conversations: dict[str, Any] = {
        str(e.data.feedback_id): e.data.conversation.model_dump() if e.data.conversation else None for e in events}
    assert conversations == {
        ticket.json()["feedback_ids"][0]: {"source": "zendesk", "id": "48213"},
        comment.json()["feedback_ids"][0]: {"source": "zendesk", "id": "48213"},
        api.json()["feedback_ids"][0]: {"source": "zendesk", "id": "48299"},
    }


def _refuse_tracker_rows(dialect: str) -> tuple[list[str], list[str]]:
    if dialect == "postgresql":
        return ([
            "CREATE FUNCTION refuse_tracker() RETURNS trigger AS $$ BEGIN IF NEW.topic = 'tracker.v1' THEN "
            "RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_tracker BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION refuse_tracker()",
        ], ["DROP TRIGGER refuse_tracker ON outbox", "DROP FUNCTION refuse_tracker()"])
    return ([
        "CREATE TRIGGER refuse_tracker BEFORE INSERT ON outbox WHEN NEW.topic = 'tracker.v1' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ], ["DROP TRIGGER refuse_tracker"])


async def _ddl(url: str, statements: list[str]) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()
