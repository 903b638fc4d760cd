"""Slack and email channels, throttling with a digest, and Retry-After, on one running app with real receivers.

Slack is a local HTTP server, email a real aiosmtpd SMTP server (with AUTH) in this process, the broker and SQLite
are real. One app serves every check, so the consumer group is joined once.
"""

from __future__ import annotations

import base64
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from notification_testkit import (
    MailSink,
    Receiver,
    SlackReceiver,
    classified,
    feedback_record,
    notification_settings,
    produce,
)

from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import free_port, serve_app, wait_for
from notification.main import create_app

SMTP_PASSWORD = "smtp-pass-never-logged"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"notifier" and \
        auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok)


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": "eq", "value": value}


async def test_slack_email_throttle_digest_and_retry_after(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        caplog: Any) -> None:
    slack = SlackReceiver()
    hooks = Receiver(secrets={"limited": "limited-secret"})
    hooks.script["limited"] = [429]
    sink = MailSink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port, auth_require_tls=False,
                            authenticator=_authenticate, auth_required=True)
    controller.start()
    settings = notification_settings(
        tmp_path, kafka_settings, common_settings, retry_schedule="0,0.1,0.1", smtp_port=smtp_port,
        smtp_username="notifier", smtp_password=SMTP_PASSWORD, smtp_from="feedback@example.com",
        dashboard_url="http://dashboard.example/", digest_grace_s=0.2)
    await ensure_topics(kafka_settings)
    try:
        async with serve_app(slack.app()) as slack_url, serve_app(hooks.app()) as hooks_url, \
                serve_app(create_app(settings)) as url, \
                httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
            slack_hook = f"{slack_url}/services/T000/B000/s3cr3tT0k3n"
            rules = {
                "bugs to slack": {"match": {"all": [_eq("kind", "bug")]},
                                  "channels": [{"type": "slack", "url": slack_hook}],
                                  "throttle": {"limit": 3, "window_s": 25}},
                "questions by email": {"match": {"all": [_eq("kind", "question")]},
                                       "channels": [{"type": "email", "to": ["billing@example.com"]}]},
                "complaints, rate limited": {"match": {"all": [_eq("kind", "complaint")]},
                                             "channels": [{"type": "webhook", "url": f"{hooks_url}/hooks/limited",
                                                           "secret": "limited-secret"}]},
            }
            ids = {}
            for name, body in rules.items():
                created = await client.post("/v1/rules", json={"name": name, "team": "billing", **body})
                assert created.status_code == 201, created.text
                ids[name] = created.json()["id"]
                assert "s3cr3tT0k3n" not in created.text
            assert created.json()["throttle"] is None
            listed = (await client.get(f"/v1/rules/{ids['bugs to slack']}")).json()
            assert listed["channels"] == [{"type": "slack", "url": f"{slack_url}/***"}]
            assert listed["throttle"] == {"limit": 3, "window_s": 25.0}

            flood = [feedback_record(classified(kind="bug", text=f"Invoice {i} fails", subject=f"Invoice {i}"))
                     for i in range(500)]
            await produce(kafka_settings, [*flood, feedback_record(classified(kind="question")),
                                           feedback_record(classified(kind="complaint"))])

            async def digests() -> list[dict[str, Any]]:
                response = await client.get("/v1/deliveries", params={"rule_id": ids["bugs to slack"],
                                                                      "status": "succeeded", "limit": 200})
                return [d for d in response.json()["items"] if d["event_kind"] == "digest"]

            (digest,) = await wait_for(digests, lambda d: len(d) == 1, what="the throttle's digest", timeout=60)
            # At most limit + 1 messages for the whole flood: three items, then one digest of the other 497.
            assert len(slack.received) == 4, [m["text"] for m in slack.received]
            digest_body = slack.received[-1]
            assert "Digest: 497 more matches of “bugs to slack”" in digest_body["text"]
            detail = (await client.get(f"/v1/deliveries/{digest['id']}")).json()
            assert detail["payload"]["count"] == 497 and detail["payload"]["reason"] == "throttle"
            assert detail["url"] == f"{slack_url}/***"
            held = (await client.get("/v1/deliveries", params={"status": "digested", "limit": 200})).json()
            assert {d["digest_id"] for d in held["items"]} == {digest["id"]}

            # The Block Kit message: title, severity colour, key numbers, a quote, a link to the dashboard.
            first = slack.received[0]
            (attachment,) = first["attachments"]
            assert attachment["color"] == "#F79009", "urgency high is a warning"
            types = [b["type"] for b in attachment["blocks"]]
            assert types[0] == "header" and "section" in types and types[-1] == "actions"
            header = attachment["blocks"][0]["text"]["text"]
            assert header.startswith("Bug from acme (enterprise): Invoice ")
            facts = " ".join(f["text"] for b in attachment["blocks"] for f in b.get("fields", []))
            assert "*Urgency*\nhigh" in facts and "*MRR*\n900" in facts
            quotes = [b["text"]["text"] for b in attachment["blocks"] if b["type"] == "section" and "text" in b]
            assert quotes and quotes[0].startswith("> Invoice ")
            assert attachment["blocks"][-1]["elements"][0]["url"] == "http://dashboard.example/"

            # Email: one message with text and HTML parts, sent after SMTP AUTH.
            await wait_for(_async_list(sink.messages), lambda m: len(m) == 1, what="the email")
            recipients, mail = sink.messages[0]
            assert recipients == ["billing@example.com"] and mail["From"] == "feedback@example.com"
            assert mail["Subject"].startswith("[warning] Question from acme")
            assert isinstance(mail, EmailMessage)
            text = mail.get_body(("plain",)).get_content()
            html = mail.get_body(("html",)).get_content()
            assert "Urgency: high" in text and "http://dashboard.example/" in text
            assert "<blockquote>" in html and "#F79009" in html

            # 429 with Retry-After: 1 — the next attempt waits at least that long, not the 0.1 s of the schedule.
            hooks.script["limited"] = []

            async def limited() -> dict[str, Any]:
                items = (await client.get("/v1/deliveries", params={"rule_id": ids["complaints, rate limited"]})
                         ).json()["items"]
                return (await client.get(f"/v1/deliveries/{items[0]['id']}")).json() if items else {}

            done = await wait_for(limited, lambda d: d.get("status") == "succeeded", what="the 429 delivery")
            first_at, second_at = (datetime.fromisoformat(a["at"]) for a in done["attempt_log"])
            assert [a["status_code"] for a in done["attempt_log"]] == [429, 200]
            assert (second_at - first_at).total_seconds() >= 1.0
            assert len(hooks.at("limited")) == 2
    finally:
        controller.stop()
    assert "s3cr3tT0k3n" not in caplog.text and SMTP_PASSWORD not in caplog.text


def _async_list(items: list[Any]) -> Any:
    async def probe() -> list[Any]:
        return items
    return probe


WHSEC = "whsec_" + base64.b64encode(b"restart-receiver-key").decode()
