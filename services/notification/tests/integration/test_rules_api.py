"""The rules API against a real server and SQLite file: CRUD, masking, previews, and 4xx naming the problem."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from notification_testkit import notification_settings
from sqlalchemy import text

from feedbackloop.db import UnitOfWorkFactory, create_engine, session_factory, upgrade
from feedbackloop.keys import KeyStore
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app, store_url
from notification.domain.targets import TargetPolicy
from notification.main import MIGRATIONS, create_app
from notification.service.routing import route_event
from notification.service.rules import RuleDraft, create_rule
from notification.store.models import runtime_tables

SECRET = "do-not-leak-this-secret"
RULE = {"name": "billing bugs", "team": "billing",
        "match": {"all": [{"field": "kind", "op": "eq", "value": "bug"},
                          {"field": "themes.id", "op": "contains", "value": "billing"}]},
        "channels": [{"type": "webhook", "url": "https://hooks.example.com/billing", "secret": SECRET}]}


def _with(**changes: Any) -> dict[str, Any]:
    return {**RULE, **changes}


def _channel(**changes: Any) -> list[dict[str, Any]]:
    return [{**RULE["channels"][0], **changes}]  # type: ignore[dict-item]


async def _stored_channels(url: str, rule_id: str) -> list[dict[str, Any]]:
    """The channels as the store holds them (secrets included), read through the service's own engine."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            raw = (await conn.execute(text("SELECT channels FROM rules WHERE id = :id"), {"id": rule_id})).scalar_one()
    finally:
        await engine.dispose()
    return json.loads(raw) if isinstance(raw, str) else raw  # type: ignore[no-any-return]


async def test_rule_crud_masks_secrets_and_previews(tmp_path: Path, kafka_settings: KafkaSettings,
                                                    common_settings: CommonSettings, admin_key: str,
                                                    read_key: str) -> None:
    settings = notification_settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        admin = {"authorization": f"Bearer {admin_key}"}
        reader = {"authorization": f"Bearer {read_key}"}
        created = await client.post("/v1/rules", json=RULE, headers=admin)
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule["channels"] == [{"type": "webhook", "url": "https://hooks.example.com/billing", "secret": "***"}]
        assert rule["enabled"] is True and rule["match"] == RULE["match"]
        others = [(await client.post("/v1/rules", json=_with(name=f"r{i}", match={"all": []}), headers=admin)).json()
                  for i in range(2)]

        one = await client.get(f"/v1/rules/{rule['id']}", headers=reader)
        first = await client.get("/v1/rules", params={"limit": 2}, headers=reader)
        second = await client.get("/v1/rules", params={"limit": 2, "cursor": first.json()["next_cursor"]},
                                  headers=reader)
        # A read key sees the webhook's URL masked too (it may hold a token); an admin key sees it whole.
        assert one.status_code == 200 and one.json() == {**rule, "channels": [
            {"type": "webhook", "url": "https://hooks.example.com/***", "secret": "***"}]}
        assert [r["id"] for r in first.json()["items"] + second.json()["items"]] == [rule["id"]] + [
            o["id"] for o in others]
        assert second.json()["next_cursor"] is None
        for response in (created, one, first, second):
            assert SECRET not in response.text

        preview = await client.post("/v1/rules/test", headers=reader, json={"event": "feedback", "data": {
            "kind": "bug", "themes": [{"id": "billing", "name": "Billing", "confidence": 0.9}]}})
        assert preview.status_code == 200, preview.text
        assert {m["id"] for m in preview.json()["matched"]} == {rule["id"]} | {o["id"] for o in others}
        assert preview.json()["rules_evaluated"] == 3
        quiet = await client.post("/v1/rules/test", headers=reader, json={"event": "insight", "data": {}})
        assert {m["id"] for m in quiet.json()["matched"]} == {o["id"] for o in others}

        # PUT back what GET showed: the masked secret keeps the stored one.
        put = await client.put(f"/v1/rules/{rule['id']}", headers=admin,
                               json={**_with(name="billing bugs v2", enabled=False), "channels": rule["channels"]})
        assert put.status_code == 200, put.text
        assert put.json()["name"] == "billing bugs v2" and put.json()["enabled"] is False
        assert put.json()["updated_at"] > rule["updated_at"]
        assert (await _stored_channels(settings.database_url, rule["id"]))[0]["secret"] == SECRET
        disabled = await client.post("/v1/rules/test", headers=reader, json={"event": "feedback", "data": {}})
        assert rule["id"] not in {m["id"] for m in disabled.json()["matched"]}

        assert (await client.delete(f"/v1/rules/{rule['id']}", headers=admin)).status_code == 204
        assert (await client.get(f"/v1/rules/{rule['id']}", headers=reader)).status_code == 404
        assert (await client.delete(f"/v1/rules/{rule['id']}", headers=admin)).status_code == 404
        assert (await client.put(f"/v1/rules/{uuid.uuid4()}", json=RULE, headers=admin)).status_code == 404

        # Scopes: reading takes `read`, changing takes `admin`.
        assert (await client.post("/v1/rules", json=RULE, headers=reader)).status_code == 403
        assert (await client.get("/v1/rules")).status_code == 401
        assert (await client.get(f"/v1/deliveries/{uuid.uuid4()}", headers=reader)).status_code == 404
        assert (await client.post(f"/v1/deliveries/{uuid.uuid4()}/retry", headers=admin)).status_code == 404


async def test_bad_rules_are_refused_naming_the_problem(tmp_path: Path, kafka_settings: KafkaSettings,
                                                        common_settings: CommonSettings, admin_key: str) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        (_with(match={"all": [{"field": "customer.tier", "op": "eq", "value": "x"}]}), "match.all.0.field",
         "unknown field 'customer.tier'"),
        (_with(match={"any": [{"field": "kind", "op": "like", "value": "bug"}]}), "match.any.0.op",
         "unknown operator 'like'"),
        (_with(channels=_channel(url="ftp://hooks.example.com/x")), "channels.0.url", "https://"),
        (_with(channels=_channel(url="not a url")), "channels.0.url", "https://"),
        (_with(channels=[{"type": "webhook", "url": "https://hooks.example.com/x"}]), "channels.0.secret",
         "required"),
        (_with(channels=[{"type": "sms", "url": "https://hooks.slack.com/x"}]), "channels.0.type",
         "supported channel types: webhook, slack, email"),
        (_with(channels=[{"type": "email", "to": ["not-an-address"]}]), "channels.0.to.0", "not an email address"),
        (_with(throttle={"limit": -1, "window_s": 60}), "throttle.limit", "integer"),
        (_with(channels=[]), "channels", "at least 1"),
        ({k: v for k, v in RULE.items() if k != "name"}, "name", "required"),
        (_with(match=[]), "match", "dictionary"),
    ]
    settings = notification_settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
        for body, field, fragment in cases:
            response = await client.post("/v1/rules", json=body)
            assert response.status_code == 422, (field, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert field in [e["field"] for e in problem["errors"]], problem
            messages = " ".join(e["message"] for e in problem["errors"] if e["field"] == field)
            assert fragment.lower() in messages.lower(), problem
            assert SECRET not in response.text
        both = await client.post("/v1/rules", json=_with(
            match={"all": [{"field": "nope", "op": "eq", "value": 1}]}, channels=[{"type": "pager"}]))
        assert {e["field"] for e in both.json()["errors"]} == {"match.all.0.field", "channels.0.type"}
        assert "supported channel types: webhook, slack, email" in both.json()["detail"]
        assert (await client.get("/v1/rules")).json()["items"] == [], "nothing invalid was stored"


async def test_route_event_queues_each_event_rule_channel_once(tmp_path: Path) -> None:
    engine = create_engine(store_url(tmp_path, "route"))
    await upgrade(engine, MIGRATIONS)
    uow_factory = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/tests")
    policy = TargetPolicy(https_only=False, allow_private=True)
    channels = [{"type": "webhook", "url": "https://a.example.com", "secret": "s1"},
                {"type": "webhook", "url": "https://b.example.com", "secret": "s2"}]
    await create_rule(uow_factory, RuleDraft("all", "t", {"all": []}, channels), policy)
    await create_rule(uow_factory, RuleDraft("none", "t", {"any": []}, channels), policy)
    try:
        counts = []
        for _ in range(2):
            async with uow_factory() as uow:
                counts.append(await route_event(uow, "feedback", "evt-1", {"kind": "bug"}, schedule=(0.0,)))
                await uow.commit()
        async with engine.connect() as conn:
            result = await conn.execute(
                text("SELECT event_id, channel_index, status FROM deliveries ORDER BY channel_index"))
            rows = [tuple(r) for r in result.all()]
        assert counts == [2, 2], "both times the event matched one rule with two channels"
        assert rows == [("evt-1", 0, "pending"), ("evt-1", 1, "pending")]
    finally:
        await engine.dispose()


async def test_urls_the_sender_cannot_parse_are_refused_with_a_422_naming_the_field(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str) -> None:
    """urllib reads these URLs, httpx (which sends them) does not: refused when saved, not stuck when sent."""
    settings = notification_settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
        kept = (await client.post("/v1/rules", json=RULE)).json()
        for bad in ("http://0177.0.0.1/hook", "https://8.8.8.010/", "https://xn--a.com/hook"):
            for response in (
                    await client.post("/v1/rules", json=_with(name="bad", channels=_channel(url=bad))),
                    await client.put(f"/v1/rules/{kept['id']}", json=_with(channels=[
                        RULE["channels"][0], {"type": "slack", "url": bad}]))):  # type: ignore[index]
                assert response.status_code == 422, (bad, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                errors = response.json()["errors"]
                assert any(e["field"].endswith(".url") and "not a valid URL" in e["message"] for e in errors), errors
                assert SECRET not in response.text
        assert [r["name"] for r in (await client.get("/v1/rules")).json()["items"]] == ["billing bugs"]


async def test_channel_urls_are_masked_for_keys_without_write_scope(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        read_key: str, keys_file: Path) -> None:
    """Discord, Teams, Zapier and plain webhook URLs hold a token in path or query: a read key sees the host only,
    in rules and in deliveries; a write or admin key sees the URL (and a Slack URL stays masked for everyone)."""
    token = "tok3n-in-the-url"
    urls = [f"https://discord.com/api/webhooks/1234/{token}", f"https://hooks.zapier.com/hooks/catch/1/{token}/",
            f"https://hooks.example.com/in?token={token}"]
    channels = [{"type": "webhook", "url": u, "secret": SECRET} for u in urls] + [
        {"type": "slack", "url": f"https://hooks.slack.com/services/T/B/{token}"}]
    write_key = KeyStore(keys_file).create("test writer", ["write"])[1]
    settings = notification_settings(tmp_path, kafka_settings, common_settings)
    async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        admin, writer, reader = ({"authorization": f"Bearer {k}"} for k in (admin_key, write_key, read_key))
        created = await client.post("/v1/rules", json=_with(match={"all": []}, channels=channels), headers=admin)
        assert created.status_code == 201, created.text
        rule = created.json()
        assert [c["url"] for c in rule["channels"]] == [*urls, "https://hooks.slack.com/***"]
        engine = create_engine(settings.database_url)
        try:
            uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/tests")
            async with uow() as unit:
                await route_event(unit, "feedback", "evt-mask", {"kind": "bug"}, schedule=(3600.0,))
                await unit.commit()
        finally:
            await engine.dispose()
        masked = ["https://discord.com/***", "https://hooks.zapier.com/***", "https://hooks.example.com/***",
                  "https://hooks.slack.com/***"]
        for headers, expected in ((reader, masked), (writer, [*urls, masked[-1]]), (admin, [*urls, masked[-1]])):
            one = await client.get(f"/v1/rules/{rule['id']}", headers=headers)
            listed = await client.get("/v1/rules", headers=headers)
            sent = await client.get("/v1/deliveries", headers=headers)
            assert [c["url"] for c in one.json()["channels"]] == expected
            assert [c["url"] for c in listed.json()["items"][0]["channels"]] == expected
            items = sorted(sent.json()["items"], key=lambda d: d["channel_index"])
            assert [d["url"] for d in items] == expected
            detail = await client.get(f"/v1/deliveries/{items[0]['id']}", headers=headers)
            assert detail.json()["url"] == expected[0]
            if headers is reader:
                for response in (one, listed, sent, detail):
                    assert token not in response.text and SECRET not in response.text


async def test_deliveries_name_their_subject_and_filter_by_it(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, read_key: str) -> None:
    """Each delivery records the id its event is about (the CloudEvents subject, else the payload's id); digests and
    older rows have none; ``?subject=`` selects one item's deliveries."""
    settings = notification_settings(tmp_path, kafka_settings, common_settings)
    engine = create_engine(settings.database_url)
    await upgrade(engine, MIGRATIONS)
    uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/tests")
    policy = TargetPolicy(https_only=False, allow_private=True)
    await create_rule(uow, RuleDraft("all", "t", {"all": []}, RULE["channels"]), policy)  # type: ignore[arg-type]
    feedback_id, insight_id = str(uuid.uuid4()), str(uuid.uuid4())
    try:
        async with uow() as unit:
            await route_event(unit, "feedback", "evt-a", {"kind": "bug"}, schedule=(3600.0,), subject=feedback_id)
            await route_event(unit, "feedback", "evt-b", {"feedback_id": str(uuid.uuid4())}, schedule=(3600.0,))
            await route_event(unit, "insight", "evt-c", {"insight_id": insight_id}, schedule=(3600.0,))
            await unit.commit()
    finally:
        await engine.dispose()
    async with serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {read_key}"}) as client:
        everything = (await client.get("/v1/deliveries")).json()["items"]
        assert len(everything) == 3 and all(d["subject"] for d in everything)
        for subject, event_id in ((feedback_id, "evt-a"), (insight_id, "evt-c")):
            response = await client.get("/v1/deliveries", params={"subject": subject})
            assert response.status_code == 200, response.text
            (only,) = response.json()["items"]
            assert (only["subject"], only["event_id"]) == (subject, event_id)
            detail = (await client.get(f"/v1/deliveries/{only['id']}")).json()
            assert detail["subject"] == subject
        assert (await client.get("/v1/deliveries", params={"subject": "nothing-about-this"})).json()["items"] == []
