"""Two ``python -m notification`` copies on one PostgreSQL database, in one consumer group, deliver every
matching event's webhook to a real receiver exactly once, and still every one when a copy is killed
(SIGKILL) mid-stream: its partitions move to the survivor, and the deliveries it had claimed but not sent
are claimed again by the survivor once their lease runs out (at least once: a resend carries the same
``webhook-id``, so the receiver drops it).

PostgreSQL whatever ``FEEDBACKLOOP_TEST_DATABASE`` says (the ``postgres_url`` fixture)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from notification_testkit import Receiver, classified, feedback_record, produce

from feedbackloop.broker import EmbeddedBroker
from feedbackloop.contracts import FEEDBACK_CLASSIFIED
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import query_store, serve_app, wait_for
from notification.domain.routing import delivery_id_for
from tests.postgres.copies import ServiceCopy, child_env, two_copies

pytestmark = pytest.mark.e2e

SECRET = "two-copies-secret"
CONCURRENCY = 8  # NOTIFICATION_DELIVERY_CONCURRENCY: at most this many sends in flight in the killed copy


@pytest.fixture
def notification_pair(tmp_path: Path, broker: EmbeddedBroker, postgres_url: Callable[[str], str],
                      keys_file: Path, admin_key: str) -> Iterator[tuple[list[ServiceCopy], str]]:
    url = postgres_url("notification")
    env = child_env(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, KAFKA_TOPIC_PARTITIONS="4",
                    NOTIFICATION_DATABASE_URL=url, NOTIFICATION_ALLOW_PRIVATE_TARGETS="true",
                    NOTIFICATION_DELIVERY_TIMEOUT="2", NOTIFICATION_DELIVERY_CONCURRENCY=str(CONCURRENCY),
                    NOTIFICATION_RETRY_SCHEDULE="0,1,1,2,2,5", NOTIFICATION_RETRY_JITTER="0",
                    FEEDBACKLOOP_KEYS_FILE=str(keys_file), FEEDBACKLOOP_LOG_LEVEL="WARNING",
                    FEEDBACKLOOP_LOG_FORMAT="console")
    with two_copies("notification", env, tmp_path) as started:
        yield started, url


def matching(start: int, count: int) -> list[tuple[tuple[str, bytes, str], str]]:
    """``count`` bug reports (the rule matches them), each with its event id."""
    return [(feedback_record(classified(kind="bug", text=f"Invoice {n} fails"), event_id=f"bug-{n}"), f"bug-{n}")
            for n in range(start, start + count)]


def webhook_ids(receiver: Receiver) -> Counter[str]:
    return Counter(r.headers["webhook-id"] for r in receiver.at("pair"))


async def test_two_notification_copies_deliver_each_webhook_once_also_when_one_is_killed(
    notification_pair: tuple[list[ServiceCopy], str], broker: EmbeddedBroker, admin_key: str
) -> None:
    running, url = notification_pair
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=4)
    await ensure_topics(kafka)
    receiver = Receiver(secrets={"pair": SECRET})
    for copy in running:
        await wait_for(copy.ready, lambda status: status == 200, timeout=90, what=f"copy on :{copy.port} ready")

    async with serve_app(receiver.app()) as hooks, \
            httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {admin_key}"}) as client:
        created = await client.post(f"{running[0].base}/v1/rules", json={
            "name": "bugs to the pair", "team": "support",
            "match": {"all": [{"field": "kind", "op": "eq", "value": "bug"}]},
            "channels": [{"type": "webhook", "url": f"{hooks}/hooks/pair", "secret": SECRET}]})
        assert created.status_code == 201, created.text
        rule_id = created.json()["id"]
        seen_by_other = await client.get(f"{running[1].base}/v1/rules/{rule_id}")
        assert seen_by_other.status_code == 200, "the other copy reads the same rules"

        # 1. Both copies running: 120 matching events, 30 that match nothing, 10 event ids sent twice.
        first = matching(0, 120)
        others = [feedback_record(classified(kind="question"), event_id=f"question-{n}") for n in range(30)]
        await produce(kafka, [r for r, _ in first] + others + [r for r, _ in first[::12]])
        expected = {delivery_id_for(event_id, rule_id, 0) for _, event_id in first}
        await wait_for(lambda: _async(webhook_ids(receiver)), lambda ids: set(ids) >= expected, timeout=120,
                       interval=0.5, what=f"{len(expected)} webhooks received")
        ids = webhook_ids(receiver)
        assert set(ids) == expected, f"{len(set(ids) - expected)} unexpected webhooks"
        assert max(ids.values()) == 1, f"sent twice: {[k for k, v in ids.items() if v > 1][:5]}"
        assert all(r.verified for r in receiver.at("pair")), "every request signed with the channel's secret"

        async def consumed() -> list[int]:
            return [await c.consumed(FEEDBACK_CLASSIFIED.name, o) for c in running for o in ("handled", "duplicate")]

        counts = await wait_for(consumed, lambda c: sum(c) >= len(first) + len(others) + 10, timeout=30,
                                interval=0.5, what="every record consumed")
        handled = [counts[0], counts[2]]
        assert sum(handled) == len(first) + len(others), f"copies handled {handled}: each event once in the group"
        assert all(share > 0 for share in handled), f"both copies took partitions: {handled}"

        # 2. One copy is killed mid-stream: the survivor takes its partitions and its claimed deliveries.
        second = matching(1000, 80)
        await produce(kafka, [r for r, _ in second[:40]])
        await wait_for(lambda: _async(webhook_ids(receiver)), lambda ids: len(ids) >= len(expected) + 10,
                       timeout=60, interval=0.05, what="the second stream under way")
        running[1].kill()
        await produce(kafka, [r for r, _ in second[40:]])
        expected |= {delivery_id_for(event_id, rule_id, 0) for _, event_id in second}
        await wait_for(lambda: _async(webhook_ids(receiver)), lambda ids: set(ids) >= expected, timeout=120,
                       interval=0.5, what=f"all {len(expected)} webhooks received after the kill")
        # What the killed copy sent but had not recorded stays pending until its claim runs out; then the
        # survivor sends it again, under the same webhook-id.
        await wait_for(lambda: query_store(url, "SELECT status, count(*) FROM deliveries GROUP BY status"),
                       lambda rows: dict(rows) == {"succeeded": len(expected)}, timeout=60, interval=0.5,
                       what=f"all {len(expected)} deliveries recorded as succeeded")
        ids = webhook_ids(receiver)
        assert set(ids) == expected, f"{len(set(ids) - expected)} unexpected webhooks"
        resent = {k: v for k, v in ids.items() if v > 1}
        assert sum(v - 1 for v in resent.values()) <= CONCURRENCY, \
            f"only what the killed copy had in flight may be sent again (same webhook-id): {resent}"
        assert all(r.verified for r in receiver.at("pair"))


async def _async(value: Any) -> Any:
    return value
