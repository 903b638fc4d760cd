"""Builders of example events and a real webhook receiver, shared by the notification tests."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook, WebhookVerificationError

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, ClassifiedFeedback, Insight, encode, new_envelope
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import store_url
from notification.config import NotificationSettings


def notification_settings(tmp_path: Path, kafka: KafkaSettings, common: CommonSettings,
                          **overrides: Any) -> NotificationSettings:
    return NotificationSettings(database_url=store_url(tmp_path, "notification"), kafka=kafka,
                                common=common, **overrides)


def classified(kind: str = "bug", plan: str = "enterprise", **changes: Any) -> ClassifiedFeedback:
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "feedback_id": str(uuid.uuid4()), "source": "zendesk", "external_id": str(uuid.uuid4()), "channel": "ticket",
        "text": "The invoice page crashes", "created_at": now, "received_at": now,
        "customer": {"id": "acme", "plan": plan, "mrr": 900}, "revision": 1,
        "sentiment": {"label": "negative", "score": -0.6}, "kind": kind,
        "themes": [{"id": "billing", "name": "Billing", "confidence": 0.8}], "urgency": "high",
        "model": {"name": "rules", "version": "1"},
    }
    data.update(changes)
    return ClassifiedFeedback.model_validate(data)


def insight(severity: str = "critical") -> Insight:
    now = datetime.now(UTC)
    return Insight.model_validate({"insight_id": str(uuid.uuid4()), "type": "spike", "title": "Billing spike",
                                   "theme": "billing", "window": {"from": now, "to": now},
                                   "metrics": {"observed": 30, "expected": 5}, "severity": severity,
                                   "created_at": now})


async def produce(kafka: KafkaSettings, records: list[tuple[str, bytes, str]],
                  headers: dict[str, str] | None = None) -> None:
    """Send ``(topic, value, key)`` records in order, each with ``headers`` (e.g. a ``traceparent``), and wait
    for the broker's acknowledgements."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, enable_idempotence=False)
    encoded = [(name, value.encode()) for name, value in (headers or {}).items()]
    await producer.start()
    try:
        for topic, value, key in records:
            await producer.send_and_wait(topic, value, key=key.encode(), headers=encoded or None)
    finally:
        await producer.stop()


def feedback_record(item: ClassifiedFeedback, event_id: str | None = None) -> tuple[str, bytes, str]:
    envelope = new_envelope(FEEDBACK_CLASSIFIED, item, source="/tests", event_id=event_id or str(uuid.uuid4()))
    return FEEDBACK_CLASSIFIED.name, encode(envelope), envelope.subject


def insight_record(item: Insight) -> tuple[str, bytes, str]:
    envelope = new_envelope(INSIGHTS, item, source="/tests", event_id=str(uuid.uuid4()))
    return INSIGHTS.name, encode(envelope), envelope.subject


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: Any


@dataclass
class Receiver:
    """A webhook receiver: verifies each request with ``standardwebhooks`` and answers per a script of statuses."""

    secrets: dict[str, str]
    script: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    received: list[Received] = field(default_factory=list)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{name}")
        async def hook(name: str, request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            secret = self.secrets[name]
            verifier = Webhook(secret) if secret.startswith("whsec_") else Webhook(secret.encode())
            try:
                payload, verified = verifier.verify(body, headers), True
            except WebhookVerificationError:
                payload, verified = None, False
            self.received.append(Received(name, headers, body, verified, payload))
            status = self.script[name].pop(0) if self.script[name] else 200
            headers = {"retry-after": "1"} if status == 429 else {}
            return Response(status_code=status if verified else 401, headers=headers)

        return app


@dataclass
class SlackReceiver:
    """A stand-in for Slack's incoming-webhook endpoint: records each JSON body and answers ``ok`` (or a script)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/services/{team}/{channel}/{token}")
        async def hook(team: str, channel: str, token: str, request: Request) -> Response:
            self.received.append(await request.json())
            status = self.script.pop(0) if self.script else 200
            return Response("ok" if status == 200 else "no_service", status_code=status, media_type="text/plain")

        return app


@dataclass
class MailSink:
    """An aiosmtpd handler that keeps every message it accepts, parsed."""

    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email
        from email import policy

        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"
