"""Closing the loop over real HTTP: a ``loop_closed`` insight told to each customer's owner by email (a real SMTP
server), as an internal note on the customer's Zendesk ticket and a reply on their Intercom conversation (the
vendor stand-ins), once per customer through 429s, lost answers and a re-published revision; and a tracker
channel filing one Jira issue per insight episode. Real broker, real store."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from notification_testkit import MailSink, notification_settings, produce
from sqlalchemy import select

from feedbackloop.contracts import INSIGHTS, Insight, encode, new_envelope
from feedbackloop.db import create_engine
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import free_port, serve_app, wait_for
from feedbackloop_testing.standins import StandinServer
from notification.main import create_app
from notification.store.models import runtime_tables

NOW = datetime.now(UTC)


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": "eq", "value": value}


def _loop_closed(insight_id: str, customers: list[dict[str, Any]], revision: int = 1) -> Insight:
    return Insight.model_validate({
        "insight_id": insight_id, "type": "loop_closed", "title": "Fixed: Login — customers to tell",
        "theme": "login", "window": {"from": NOW, "to": NOW}, "metrics": {"customers": len(customers)},
        "severity": "info", "evidence": [i for c in customers for i in c["items"]], "created_at": NOW,
        "revision": revision,
        "loop": {"link_id": "link-1", "theme": "login",
                 "issue": {"issue_key": "jira:AUTH-7", "tracker": "jira", "title": "Login fails with SSO",
                           "url": "https://acme.atlassian.net/browse/AUTH-7", "status": "done"},
                 "release": {"release_id": "rel-1", "version": "2.4.0"},
                 "linked_at": NOW - timedelta(days=2), "closed_at": NOW, "items": 4, "customers": customers}})


def _spike(insight_id: str, severity: str) -> Insight:
    return Insight.model_validate({
        "insight_id": insight_id, "type": "spike", "title": "Login complaints spike", "theme": "login",
        "window": {"from": NOW, "to": NOW}, "metrics": {"observed": 30, "expected": 5}, "severity": severity,
        "evidence": [str(uuid.uuid4()) for _ in range(3)], "created_at": NOW})


def _record(item: Insight) -> tuple[tuple[str, bytes, str], str]:
    event_id = str(uuid.uuid4())
    envelope = new_envelope(INSIGHTS, item, source="/tests", event_id=event_id)
    return (INSIGHTS.name, encode(envelope), envelope.subject), event_id


def _customer(customer_id: str, owner: str | None, conversations: list[dict[str, str]]) -> dict[str, Any]:
    return {"id": customer_id, "plan": "enterprise", "mrr": 500, "owner": owner,
            "items": [str(uuid.uuid4())], "conversations": conversations}


def _probe(items: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        return items()
    return probe


@pytest.fixture
def vendors(standins: StandinServer, monkeypatch: pytest.MonkeyPatch) -> StandinServer:
    """The stand-ins, with the NOTIFICATION_ZENDESK/INTERCOM_* and TRACKER_* variables pointing at them."""
    for name, value in standins.env().items():
        monkeypatch.setenv(name, value)
    return standins


async def test_a_closed_loop_tells_each_customer_once_through_faults_and_revisions(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        vendors: StandinServer) -> None:
    sink = MailSink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    settings = notification_settings(tmp_path, kafka_settings, common_settings, retry_schedule="0,0.2,0.2,0.2,0.2",
                                     retry_jitter=0, smtp_port=smtp_port, smtp_from="loop@example.com")
    engine = create_engine(settings.database_url)
    await ensure_topics(kafka_settings)

    async def processed(event_id: str) -> bool:
        table = runtime_tables.processed_events
        async with engine.connect() as conn:
            return (await conn.execute(select(table.c.event_id).where(table.c.event_id == event_id))).first() \
                is not None

    insight_id = str(uuid.uuid4())
    acme = _customer("acme", "jane@vendor.example", [{"source": "zendesk", "id": "812"},
                                                     {"source": "zendesk", "id": "700"}])
    globex = _customer("globex", "sam@vendor.example", [{"source": "intercom", "id": "ic-1"}])
    initech = _customer("initech", None, [])
    vendors.fault("zendesk", "status", status=429, times=2)
    vendors.fault("intercom", "lose_answer", times=1)
    try:
        async with serve_app(create_app(settings)) as url, \
                httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            created = await client.post("/v1/rules", json={
                "name": "tell the customers", "team": "success", "match": {"all": [_eq("type", "loop_closed")]},
                "channels": [{"type": "email", "to": [], "to_owner": True},
                             {"type": "zendesk", "public": False},
                             {"type": "intercom", "public": True,
                              "message": "Fixed in {release}: {issue_title} ({issue_url})"}]})
            assert created.status_code == 201, created.text
            rule_id = created.json()["id"]

            record, first_event = _record(_loop_closed(insight_id, [acme, globex, initech]))
            await produce(kafka_settings, [record])

            async def settled() -> list[dict[str, Any]]:
                page = (await client.get("/v1/deliveries", params={"rule_id": rule_id, "limit": 200})).json()
                return page["items"]

            deliveries = await wait_for(settled, lambda items: len(items) == 5 and all(
                d["status"] in ("succeeded", "skipped") for d in items), what="the loop's deliveries", timeout=60)
            by = {(d["customer"], d["channel_index"]): d for d in deliveries}
            assert sorted(by) == [("acme", 0), ("acme", 1), ("globex", 0), ("globex", 2), ("initech", 0)]
            assert {d["subject"] for d in deliveries} == {insight_id}
            skipped = by[("initech", 0)]
            assert skipped["status"] == "skipped" and "initech has no owner" in skipped["last_error"]
            assert skipped["attempts"] == 0

            # Owner emails: one each, saying which issue was fixed, the release, the customer and their items.
            await wait_for(_probe(lambda: sink.messages), lambda m: len(m) == 2, what="two owner emails")
            mails = {tuple(rcpt): mail for rcpt, mail in sink.messages}
            assert set(mails) == {("jane@vendor.example",), ("sam@vendor.example",)}
            jane = mails[("jane@vendor.example",)]
            assert jane["Subject"] == "[info] Fixed: Login fails with SSO — acme asked for it"
            text = jane.get_body(("plain",)).get_content()
            for expected in ("Release: 2.4.0", "Customer: acme", "Their items: 1", acme["items"][0],
                             "The issue: https://acme.atlassian.net/browse/AUTH-7"):
                assert expected in text

            # Zendesk: 429 twice, then one internal note on the NEWEST ticket (812), never on 700.
            note = by[("acme", 1)]
            (comment,) = vendors.comments(812)
            assert vendors.comments(700) == []
            assert comment["public"] is False and "Login fails with SSO" in comment["plain_body"]
            assert f"feedbackloop:{note['id']}" in comment["plain_body"]
            detail = (await client.get(f"/v1/deliveries/{note['id']}")).json()
            assert [a["status_code"] for a in detail["attempt_log"]] == [429, 429, 200]
            assert detail["result"] == "zendesk ticket 812: internal note"

            # Intercom: the reply was made but its answer lost (502); the retry finds the marker: one reply.
            reply = by[("globex", 2)]
            (part,) = vendors.conversation_parts("ic-1")
            assert part["part_type"] == "comment" and part["author"]["id"] == vendors.config.intercom_admin_id
            assert part["body"].startswith("<p>Fixed in 2.4.0: Login fails with SSO "
                                           "(https://acme.atlassian.net/browse/AUTH-7)</p>")
            detail = (await client.get(f"/v1/deliveries/{reply['id']}")).json()
            assert [a["status_code"] for a in detail["attempt_log"]] == [502, 200]
            assert "marker was found" in detail["result"]
            posts = [r for r in vendors.requests("intercom") if r["method"] == "POST"]
            assert len(posts) == 1

            # The same insight again (revision 2, a new event) with one more customer: only the newcomer is told.
            hooli = _customer("hooli", "kim@vendor.example", [{"source": "zendesk", "id": "900"}])
            record, second_event = _record(_loop_closed(insight_id, [acme, globex, initech, hooli], revision=2))
            await produce(kafka_settings, [record])
            await wait_for(lambda: processed(second_event), bool, what="the revision consumed")
            deliveries = await wait_for(settled, lambda items: len(items) == 7 and all(
                d["status"] in ("succeeded", "skipped") for d in items), what="the newcomer's deliveries")
            assert sorted((d["customer"], d["channel_index"]) for d in deliveries
                          if d["customer"] == "hooli") == [("hooli", 0), ("hooli", 1)]
            await wait_for(_probe(lambda: sink.messages), lambda m: len(m) == 3, what="the newcomer's email")
            assert sorted(tuple(r) for r, _ in sink.messages) == [
                ("jane@vendor.example",), ("kim@vendor.example",), ("sam@vendor.example",)]
            assert len(vendors.comments(812)) == 1 and len(vendors.comments(900)) == 1
            assert len(vendors.conversation_parts("ic-1")) == 1
            assert await processed(first_event)
    finally:
        controller.stop()
        await engine.dispose()


async def test_a_tracker_channel_files_one_jira_issue_per_insight_episode(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        vendors: StandinServer) -> None:
    settings = notification_settings(tmp_path, kafka_settings, common_settings, retry_schedule="0,0.2,0.2,0.2",
                                      retry_jitter=0, dashboard_url="http://dashboard.example/")
    engine = create_engine(settings.database_url)
    await ensure_topics(kafka_settings)
    vendors.fault("jira", "lose_answer", times=1, method="POST", path_contains="/rest/api/3/issue")

    async def processed(event_id: str) -> bool:
        table = runtime_tables.processed_events
        async with engine.connect() as conn:
            return (await conn.execute(select(table.c.event_id).where(table.c.event_id == event_id))).first() \
                is not None

    try:
        async with serve_app(create_app(settings)) as url, \
                httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            on_feedback = await client.post("/v1/rules", json={
                "name": "bugs to jira", "team": "auth", "match": {"all": [_eq("kind", "bug")]},
                "channels": [{"type": "tracker", "tracker": "jira", "project": "AUTH"}]})
            assert on_feedback.status_code == 422
            assert on_feedback.json()["errors"][0]["field"] == "channels.0.type"
            created = await client.post("/v1/rules", json={
                "name": "login spikes to jira", "team": "auth",
                "match": {"all": [_eq("type", "spike"), _eq("theme", "login")]},
                "channels": [{"type": "tracker", "tracker": "jira", "project": "AUTH", "issue_type": "Bug",
                              "labels": ["feedback"]}]})
            assert created.status_code == 201, created.text
            rule_id = created.json()["id"]

            spike_id = str(uuid.uuid4())
            record, _ = _record(_spike(spike_id, "warning"))
            await produce(kafka_settings, [record])

            async def sent() -> list[dict[str, Any]]:
                page = (await client.get("/v1/deliveries", params={"rule_id": rule_id})).json()
                return [d for d in page["items"] if d["status"] == "succeeded"]

            (delivery,) = await wait_for(sent, lambda items: len(items) == 1, what="the issue filed", timeout=60)
            (issue,) = vendors.issues("jira")
            assert issue["fields"]["summary"] == "Login complaints spike"
            assert issue["fields"]["issuetype"]["name"] == "Bug"
            assert "feedback" in issue["fields"]["labels"]
            assert delivery["result"].startswith(f"jira:{issue['key']}")
            assert delivery["url"] == "jira:AUTH"
            detail = (await client.get(f"/v1/deliveries/{delivery['id']}")).json()
            assert [a["status_code"] for a in detail["attempt_log"]] == [502, 201], "lost answer, then found"

            # The same insight escalated (a new event), and another insight of the same episode: still one issue.
            escalated, escalated_event = _record(_spike(spike_id, "critical"))
            same_story, same_story_event = _record(_spike(str(uuid.uuid4()), "critical"))
            await produce(kafka_settings, [escalated, same_story])
            for event_id in (escalated_event, same_story_event):
                await wait_for(lambda e=event_id: processed(e), bool, what="the later insights consumed")
            await wait_for(sent, lambda items: len(items) == 1, what="no second issue")
            assert len(vendors.issues("jira")) == 1
            page = (await client.get("/v1/deliveries", params={"rule_id": rule_id})).json()
            assert len(page["items"]) == 1
    finally:
        await engine.dispose()


async def test_a_reply_channel_is_refused_while_its_tool_is_unconfigured(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFICATION_ZENDESK_URL", "NOTIFICATION_ZENDESK_EMAIL", "NOTIFICATION_ZENDESK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = notification_settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
        answer = await client.post("/v1/rules", json={
            "name": "notes", "team": "success", "match": {"all": [_eq("type", "loop_closed")]},
            "channels": [{"type": "zendesk", "message": "Fixed: {title}"}]})
    assert answer.status_code == 422
    errors = {e["field"]: e["message"] for e in answer.json()["errors"]}
    assert errors["channels.0.message"].startswith("unknown placeholder {title}")
    assert errors["channels.0.type"] == ("zendesk is not configured: set NOTIFICATION_ZENDESK_URL, "
                                         "NOTIFICATION_ZENDESK_EMAIL, NOTIFICATION_ZENDESK_TOKEN")
