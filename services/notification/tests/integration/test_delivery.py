"""Events in → rules matched → signed webhooks out, against a real broker, SQLite and HTTP receiver."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
from notification_testkit import (
    Receiver,
    classified,
    feedback_record,
    insight,
    insight_record,
    notification_settings,
    produce,
)
from prometheus_client import REGISTRY

from feedbackloop.contracts import FEEDBACK_CLASSIFIED
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app, wait_for
from notification.main import create_app

WHSEC = "whsec_" + base64.b64encode(b"flaky-receiver-key-0123").decode()


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _rule(name: str, url: str, secret: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "team": "support", "match": {"all": list(conditions)},
            "channels": [{"type": "webhook", "url": url, "secret": secret}]}


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": "eq", "value": value}


async def test_matching_events_are_delivered_signed_retried_and_recorded(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str) -> None:
    receiver = Receiver(secrets={"ok": "plain-secret", "flaky": WHSEC, "bad": "bad-secret", "trends": "t-secret"})
    receiver.script["flaky"] = [500, 500]
    receiver.script["bad"] = [400]
    settings = notification_settings(tmp_path, kafka_settings, common_settings, retry_schedule="0,0.2,0.2")
    await ensure_topics(kafka_settings)
    unmatched_before = _metric("feedbackloop_notification_events_unmatched_total", service="notification",
                               event="feedback")
    duplicates_before = _metric("feedbackloop_events_consumed_total", service="notification",
                                topic=FEEDBACK_CLASSIFIED.name, outcome="duplicate")

    async with serve_app(receiver.app()) as hooks, serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
        rules = {}
        for name, secret, condition in [("ok", "plain-secret", _eq("customer.plan", "enterprise")),
                                        ("flaky", WHSEC, _eq("kind", "complaint")),
                                        ("bad", "bad-secret", _eq("kind", "question")),
                                        ("trends", "t-secret", _eq("severity", "critical"))]:
            extra = [_eq("kind", "bug")] if name == "ok" else []
            created = await client.post("/v1/rules", json=_rule(name, f"{hooks}/hooks/{name}", secret, condition,
                                                                *extra))
            assert created.status_code == 201, created.text
            rules[name] = created.json()["id"]

        bug = feedback_record(classified(kind="bug", plan="enterprise"), event_id="evt-bug")
        critical = insight_record(insight("critical"))
        await produce(kafka_settings, [
            bug,
            feedback_record(classified(kind="bug", plan="free")),  # matches no rule
            bug,  # the same event again
            feedback_record(classified(kind="complaint")),
            feedback_record(classified(kind="question")),
            critical,
        ])

        async def deliveries(**params: Any) -> list[dict[str, Any]]:
            response = await client.get("/v1/deliveries", params=params)
            assert response.status_code == 200, response.text
            return response.json()["items"]  # type: ignore[no-any-return]

        def settled(items: list[dict[str, Any]]) -> bool:
            return len(items) == 4 and all(d["status"] != "pending" for d in items)

        items = await wait_for(deliveries, settled, what="4 deliveries settled", timeout=40)
        by_rule = {d["rule_id"]: d for d in items}
        await wait_for(lambda: _async(_metric("feedbackloop_events_consumed_total", service="notification",
                                              topic=FEEDBACK_CLASSIFIED.name, outcome="duplicate")),
                       lambda n: n > duplicates_before, what="the repeated event skipped")

        # A matching event: delivered once, signed, 1 attempt.
        ok = by_rule[rules["ok"]]
        assert (ok["status"], ok["attempts"], ok["event_id"], ok["event_kind"]) == ("succeeded", 1, "evt-bug",
                                                                                    "feedback")
        (hit,) = receiver.at("ok")
        assert hit.verified and hit.headers["webhook-id"] == ok["id"]
        assert hit.payload["type"] == "feedback" and hit.payload["event_id"] == "evt-bug"
        assert hit.payload["rule"] == {"id": rules["ok"], "name": "ok", "team": "support"}
        assert hit.payload["data"]["customer"]["plan"] == "enterprise"
        assert _metric("feedbackloop_notification_events_unmatched_total", service="notification",
                       event="feedback") > unmatched_before

        # 500, 500, 200: one delivery, three attempts, the same webhook-id every time.
        flaky = by_rule[rules["flaky"]]
        assert (flaky["status"], flaky["attempts"], flaky["last_status_code"]) == ("succeeded", 3, 200)
        hits = receiver.at("flaky")
        assert len(hits) == 3 and all(h.verified for h in hits)
        assert {h.headers["webhook-id"] for h in hits} == {flaky["id"]}
        detail = (await client.get(f"/v1/deliveries/{flaky['id']}")).json()
        assert [a["status_code"] for a in detail["attempt_log"]] == [500, 500, 200]
        assert [a["attempt"] for a in detail["attempt_log"]] == [1, 2, 3]

        # 400 is not retried.
        bad = by_rule[rules["bad"]]
        assert (bad["status"], bad["attempts"], bad["last_status_code"]) == ("failed", 1, 400)
        assert len(receiver.at("bad")) == 1

        # Insights go through the same path.
        trend = by_rule[rules["trends"]]
        assert trend["status"] == "succeeded" and trend["event_kind"] == "insight"
        (insight_hit,) = receiver.at("trends")
        assert insight_hit.verified and insight_hit.payload["type"] == "insight"
        assert insight_hit.payload["data"]["severity"] == "critical" and "from" in insight_hit.payload["data"]["window"]

        # Filters.
        assert [d["id"] for d in await deliveries(status="failed")] == [bad["id"]]
        assert [d["id"] for d in await deliveries(rule_id=rules["ok"])] == [ok["id"]]
        assert [d["id"] for d in await deliveries(event_id="evt-bug")] == [ok["id"]]
        # Each delivery names its subject: the CloudEvents subject (record key), the feedback or insight id.
        assert ok["subject"] == bug[2] == hit.payload["data"]["feedback_id"]
        assert by_rule[rules["trends"]]["subject"] == critical[2] == insight_hit.payload["data"]["insight_id"]
        assert [d["id"] for d in await deliveries(subject=bug[2])] == [ok["id"]]
        assert [d["id"] for d in await deliveries(subject=critical[2])] == [by_rule[rules["trends"]]["id"]]
        page = (await client.get("/v1/deliveries", params={"limit": 3})).json()
        rest = (await client.get("/v1/deliveries", params={"limit": 3, "cursor": page["next_cursor"]})).json()
        assert len(page["items"]) == 3 and len(rest["items"]) == 1 and rest["next_cursor"] is None
        assert {d["id"] for d in page["items"] + rest["items"]} == {d["id"] for d in items}

        # A failed delivery re-queued by hand goes out again with the same webhook-id.
        assert (await client.post(f"/v1/deliveries/{ok['id']}/retry")).status_code == 409
        retried = await client.post(f"/v1/deliveries/{bad['id']}/retry")
        assert retried.status_code == 202 and retried.json()["status"] == "pending"

        async def bad_detail() -> dict[str, Any]:
            return (await client.get(f"/v1/deliveries/{bad['id']}")).json()  # type: ignore[no-any-return]

        done = await wait_for(bad_detail, lambda d: d["status"] != "pending", what="the retried delivery")
        assert (done["status"], done["attempts"]) == ("succeeded", 2)
        assert [a["status_code"] for a in done["attempt_log"]] == [400, 200]
        assert [h.headers["webhook-id"] for h in receiver.at("bad")] == [bad["id"], bad["id"]]

    assert len(receiver.at("ok")) == 1, "each (event, rule, channel) is delivered once"


async def _async(value: float) -> float:
    return value
