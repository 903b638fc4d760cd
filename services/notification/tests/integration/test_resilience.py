"""A restart mid-retry delivers exactly once; a failing channel is paused with an insight; rules load from YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from notification_testkit import Receiver, classified, feedback_record, notification_settings, produce

from feedbackloop.db import UnitOfWorkFactory, create_engine, session_factory, upgrade
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import query_store, serve_app, store_url, wait_for
from notification.domain.targets import TargetPolicy
from notification.main import MIGRATIONS, create_app
from notification.service.rules_file import RulesFileError, load_rules_file
from notification.store.models import runtime_tables


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": "eq", "value": value}


async def test_restart_mid_retry_delivers_once_and_failing_channel_is_paused(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    receiver = Receiver(secrets={"flaky": "flaky-secret", "broken": "broken-secret"})
    receiver.script["flaky"] = [503]
    receiver.script["broken"] = [404, 404, 404]
    rules_file = tmp_path / "rules.yaml"
    settings = notification_settings(tmp_path, kafka_settings, common_settings, retry_schedule="0,3",
                                     pause_after_failures=2, rules_file=rules_file)
    await ensure_topics(kafka_settings)
    auth = {"authorization": f"Bearer {admin_key}"}
    async with serve_app(receiver.app()) as hooks:
        monkeypatch.setenv("FLAKY_SECRET", "flaky-secret")
        rules_file.write_text(f"""
teams:
  - name: support
rules:
  - name: flaky bugs
    team: support
    match: {{all: [{{field: kind, op: eq, value: bug}}]}}
    channels: [{{type: webhook, url: "{hooks}/hooks/flaky", secret: "${{FLAKY_SECRET}}"}}]
  - name: broken questions
    team: support
    match: {{all: [{{field: kind, op: eq, value: question}}]}}
    channels: [{{type: webhook, url: "{hooks}/hooks/broken", secret: broken-secret}}]
""")
        async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url, headers=auth) as client:
            rules = {r["name"]: r for r in (await client.get("/v1/rules")).json()["items"]}
            assert set(rules) == {"flaky bugs", "broken questions"}, "the rules file was applied"
            assert [t["name"] for t in (await client.get("/v1/teams")).json()["items"]] == ["support"]
            await produce(kafka_settings, [feedback_record(classified(kind="bug"), event_id="evt-restart"),
                                           feedback_record(classified(kind="question")),
                                           feedback_record(classified(kind="question"))])

            async def flaky() -> list[dict[str, Any]]:
                return (await client.get("/v1/deliveries", params={"rule_id": rules["flaky bugs"]["id"]})
                        ).json()["items"]  # type: ignore[no-any-return]

            first = await wait_for(flaky, lambda d: len(d) == 1 and d[0]["attempts"] == 1, what="first attempt")
            assert first[0]["status"] == "pending" and first[0]["last_status_code"] == 503

            async def broken() -> list[dict[str, Any]]:
                return (await client.get("/v1/deliveries", params={"rule_id": rules["broken questions"]["id"]})
                        ).json()["items"]  # type: ignore[no-any-return]

            await wait_for(broken, lambda d: len(d) == 2 and all(x["status"] == "failed" for x in d),
                           what="two failed deliveries")
        # The app stopped between attempts 1 and 2 of the flaky delivery; a new one takes over the same store.
        async with serve_app(create_app(settings)) as url, httpx.AsyncClient(base_url=url, headers=auth) as client:
            done = await wait_for(flaky, lambda d: d and d[0]["status"] == "succeeded", what="delivered after restart")
            assert done[0]["attempts"] == 2
            hits = receiver.at("flaky")
            assert len(hits) == 2 and {h.headers["webhook-id"] for h in hits} == {done[0]["id"]}
            assert len([h for h in hits if h.verified]) == 2
            # The broken channel is paused: a new match is held as `paused`, not sent.
            await produce(kafka_settings, [feedback_record(classified(kind="question"))])
            held = await wait_for(broken, lambda d: len(d) == 3, what="the third question")
            assert sorted(d["status"] for d in held) == ["failed", "failed", "paused"]
            assert len(receiver.at("broken")) == 2
            # ... and an insight says so, through the outbox.
            rows = await query_store(settings.database_url, "SELECT topic, event_id, value FROM outbox")
            (topic, _event_id, value), = rows
            insight = json.loads(value)["data"]
            assert topic == "insights.v1" and insight["type"] == "channel_paused"
            assert insight["metrics"] == {"consecutive_failures": 2, "held_deliveries": 0}
            assert "broken questions" in insight["title"]
            paused = insight["paused_channel"]
            assert (paused["rule_id"], paused["team"], paused["index"], paused["type"]) == (
                rules["broken questions"]["id"], "support", 0, "webhook")
            assert paused["target"] == f"{hooks}/***", "any key reads insights: the URL is masked"
            assert paused["last_error"].startswith("HTTP 404")
            # Resuming queues the held delivery again (the receiver now answers 200).
            receiver.script["broken"] = []
            resumed = await client.post(f"/v1/rules/{rules['broken questions']['id']}/channels/0/resume")
            assert resumed.status_code == 200 and resumed.json() == {"requeued": 1}
            await wait_for(broken, lambda d: sorted(x["status"] for x in d) == ["failed", "failed", "succeeded"],
                           what="the resumed delivery")
            assert (await client.post(f"/v1/rules/{rules['broken questions']['id']}/channels/0/resume")
                    ).status_code == 409


async def test_a_bad_rules_file_names_the_file_and_the_rule(tmp_path: Path) -> None:
    url = store_url(tmp_path, "rules")
    engine = create_engine(url)
    await upgrade(engine, MIGRATIONS)
    uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/tests")
    path = tmp_path / "rules.yaml"
    path.write_text("""
rules:
  - name: good
    team: t
    match: {all: []}
    channels: [{type: email, to: [a@example.com]}]
  - name: bad op
    team: t
    match: {all: [{field: kind, op: like, value: bug}]}
    channels: [{type: slack, url: "${NOT_SET_ANYWHERE_42}"}]
""")
    try:
        with pytest.raises(RulesFileError) as caught:
            await load_rules_file(path, uow, TargetPolicy(https_only=False, allow_private=True))
        message = str(caught.value)
        assert f"{path}: rule 'bad op' (rules[1])" in message
        assert "NOT_SET_ANYWHERE_42 is not set" in message
        assert await query_store(url, "SELECT count(*) FROM rules") == [(0,)], "all or nothing"
        path.write_text(path.read_text().replace("op: like", "op: eq").replace("${NOT_SET_ANYWHERE_42}",
                                                                              "https://hooks.slack.com/services/x"))
        counts = await load_rules_file(path, uow, TargetPolicy(https_only=False, allow_private=True))
        assert counts == {"rules_created": 2}
        assert await load_rules_file(path, uow, TargetPolicy(https_only=False, allow_private=True)) == {
            "rules_updated": 2}, "upsert by name"
    finally:
        await engine.dispose()


async def test_a_rules_file_url_the_sender_cannot_parse_is_refused_naming_rule_and_field(tmp_path: Path) -> None:
    """``http://0177.0.0.1`` reads as a URL to urllib, not to httpx, which would send it: the file is refused."""
    url = store_url(tmp_path, "rules")
    engine = create_engine(url)
    await upgrade(engine, MIGRATIONS)
    uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/tests")
    path = tmp_path / "rules.yaml"
    path.write_text("""
rules:
  - name: octal host
    team: t
    match: {all: []}
    channels:
      - {type: webhook, url: "http://0177.0.0.1/hook", secret: s3cret-value}
      - {type: slack, url: "https://8.8.8.010/services/T/B/x"}
""")
    try:
        with pytest.raises(RulesFileError) as caught:
            await load_rules_file(path, uow, TargetPolicy(https_only=False, allow_private=True))
        message = str(caught.value)
        assert f"{path}: rule 'octal host' (rules[0])" in message
        assert "channels.0.url: not a valid URL: Invalid IPv4 address: '0177.0.0.1'" in message, message
        assert "channels.1.url: not a valid URL: Invalid IPv4 address: '8.8.8.010'" in message, message
        assert "s3cret-value" not in message
        assert await query_store(url, "SELECT count(*) FROM rules") == [(0,)]
    finally:
        await engine.dispose()
