"""A delivery whose request cannot even be built or started — a stored URL ``httpx`` cannot read or send to, a
secret that does not decode — is a recorded failed attempt, never a delivery left pending, and its log lines
carry neither the secret nor the URL's credential-bearing path. Real SQLite (or PostgreSQL), the real worker;
the rules are written straight to the store, as rules saved before URLs were checked with httpx are."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedbackloop.db import UnitOfWorkFactory, create_engine, session_factory, upgrade
from feedbackloop.settings import CommonSettings
from feedbackloop_testing import captured_logs, store_url, wait_for
from notification.config import NotificationSettings
from notification.main import MIGRATIONS
from notification.service.deliveries import get_delivery, list_deliveries
from notification.service.routing import route_event
from notification.store.models import Rule, runtime_tables
from notification.worker import DeliveryWorker

SECRET = "never-log-this-channel-secret"
TOKEN = "TOKEN-IN-THE-PATH"
#: name → (stored channel, expected status, attempts, error fragment). Nothing here opens a connection.
CHANNELS: dict[str, tuple[dict[str, Any], str, int, str]] = {
    "leading-zero ipv4": ({"type": "webhook", "url": f"http://0177.0.0.1/hooks/{TOKEN}", "secret": SECRET},
                          "failed", 1, "Invalid IPv4 address"),
    "octal last octet": ({"type": "webhook", "url": f"https://8.8.8.010/{TOKEN}", "secret": SECRET},
                         "failed", 1, "Invalid IPv4 address"),
    "bad idna label": ({"type": "webhook", "url": f"https://xn--a.com/{TOKEN}", "secret": SECRET},
                       "failed", 1, "cannot send to this URL"),
    "unsupported scheme": ({"type": "slack", "url": f"ftp://hooks.example.com/services/T/B/{TOKEN}"},
                           "failed", 1, "unsupported protocol"),
    # Signing fails before any connection: retried on the schedule (two attempts), then failed.
    "undecodable secret": ({"type": "webhook", "url": f"http://127.0.0.1:9/{TOKEN}", "secret": "whsec_%%%"},
                           "failed", 2, "cannot build the request"),
}


async def test_a_send_that_cannot_start_is_a_recorded_failure_not_a_pending_delivery(
        tmp_path: Path, common_settings: CommonSettings) -> None:
    url = store_url(tmp_path, "notification")
    engine = create_engine(url)
    await upgrade(engine, MIGRATIONS)
    uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/tests")
    reads = session_factory(engine)
    now = datetime.now(UTC)
    rule_ids: dict[str, str] = {}
    async with uow() as unit:
        for name, (channel, *_) in CHANNELS.items():
            rule_ids[name] = str(uuid.uuid4())
            unit.session.add(Rule(id=rule_ids[name], name=name, team="t", match={"all": []}, channels=[channel],
                                  enabled=True, created_at=now, updated_at=now))
        await unit.commit()
    async with uow() as unit:
        assert await route_event(unit, "feedback", "evt-unsendable", {"kind": "bug"}, schedule=(0.0,)) == len(CHANNELS)
        await unit.commit()
    settings = NotificationSettings(database_url=url, common=common_settings, retry_schedule="0,0.2",
                                    retry_jitter=0, delivery_poll_interval=0.05)

    async def deliveries() -> list[Any]:
        return await list_deliveries(reads, 50, None)

    try:
        with captured_logs("notification", fmt="json") as output:
            worker = DeliveryWorker(settings, uow, reads)
            running = asyncio.create_task(worker.run())
            try:
                await wait_for(deliveries, lambda ds: len(ds) == len(CHANNELS) and all(
                    d.status != "pending" for d in ds), what="every delivery settled, none left pending", timeout=20)
            finally:
                worker.stop()
                await running
        by_rule = {d.rule_id: d for d in await deliveries()}
        for name, (_channel, status, attempts, fragment) in CHANNELS.items():
            delivery = by_rule[rule_ids[name]]
            assert (delivery.status, delivery.attempts) == (status, attempts), (name, delivery.last_error)
            assert fragment.lower() in (delivery.last_error or "").lower(), (name, delivery.last_error)
            _, log = await get_delivery(reads, delivery.id)
            assert [a.attempt for a in log] == list(range(1, attempts + 1)), name
            assert all(a.status_code is None and a.error for a in log), name
            for text in (delivery.last_error or "", *(a.error or "" for a in log)):
                assert SECRET not in text and TOKEN not in text, (name, text)
        logged = output.getvalue()
        assert "delivery attempt" in logged and "delivery could not be sent" in logged
        assert SECRET not in logged and TOKEN not in logged, "neither the secret nor the URL's path is logged"
        assert "recording a delivery attempt failed" not in logged
    finally:
        await engine.dispose()
