"""`kill -9` of a consumer mid-stream loses nothing and duplicates nothing downstream.

Classification and aggregation run as real processes (`python -m <service>`) on a real broker with
SQLite files; each is killed with SIGKILL while it works through a stream, then restarted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from feedbackloop.broker import Broker
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, FEEDBACK_RAW, RawFeedback, encode, feedback_id_for
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.keys import KeyStore
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import free_port, make_test_broker, store_url, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # 3,000 items through two crashes: minutes under load


class Service:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.env, self.log = name, env, log
        self.port = int(env[f"{name.upper()}_PORT"])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", self.name], env=self.env, stdout=out,
                                            stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    async def handled(self, topic: str) -> int:
        """Events this process handled (not duplicates), from its own /metrics."""
        async with httpx.AsyncClient(timeout=2) as client:
            text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        return sum(int(sample.value) for family in text_string_to_metric_families(text)
                   for sample in family.samples
                   if sample.name == "feedbackloop_events_consumed_total"
                   and sample.labels.get("outcome") == "handled" and sample.labels.get("topic") == topic)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Broker, dict[str, Service], str]]:
    broker = make_test_broker(tmp_path)
    broker.start()
    key = KeyStore(tmp_path / "keys.json").create("test", ["admin"])[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLASSIFICATION_", "AGGREGATION_", "KAFKA_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap, "KAFKA_TOPIC_PARTITIONS": "3",
                "FEEDBACKLOOP_KEYS_FILE": str(tmp_path / "keys.json"), "FEEDBACKLOOP_LOG_LEVEL": "WARNING"})
    services = {}
    for name in ("classification", "aggregation"):
        env[f"{name.upper()}_PORT"] = str(free_port())
        env[f"{name.upper()}_DATABASE_URL"] = store_url(tmp_path, name)
    for name in ("classification", "aggregation"):
        services[name] = Service(name, dict(env), tmp_path / f"{name}.log")
    yield broker, services, key
    for service in services.values():
        service.stop()
    broker.stop()


async def produce_raw(kafka: KafkaSettings, start: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        now = datetime.now(UTC)
        texts = ["The app crashes when I export a report", "Please add dark mode", "Love the new dashboard!",
                 "How do I reset my password?", "Billing charged me twice, this is unacceptable"]
        for n in range(start, start + count):
            data = RawFeedback(feedback_id=feedback_id_for("crash", str(n)), source="crash", external_id=str(n),
                               channel="api", text=f"{texts[n % len(texts)]} (#{n})", created_at=now, received_at=now)
            event = new_envelope(FEEDBACK_RAW, data, source="/test", event_id=f"raw-{n}")
            await producer.send(FEEDBACK_RAW.name, encode(event), key=str(data.feedback_id).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def all_items(url: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    async with httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=10) as client:
        while True:
            params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/v1/feedback", params=params)).json()
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items


async def counted_items(url: str, key: str) -> tuple[int, list[dict[str, Any]]]:
    """How many items aggregation lists, and the items (the count leads, so a timeout message shows it)."""
    items = await all_items(url, key)
    return len(items), items


async def distinct_classified(kafka: KafkaSettings) -> tuple[int, int]:
    consumer = AIOKafkaConsumer(FEEDBACK_CLASSIFIED.name, bootstrap_servers=kafka.bootstrap_servers,
                                auto_offset_reset="earliest")
    await consumer.start()
    ids: list[str] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                break
            ids += [json.loads(r.value)["id"] for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return len(ids), len(set(ids))


async def test_sigkill_mid_stream_loses_nothing_and_doubles_nothing(
        stack: tuple[Broker, dict[str, Service], str]) -> None:
    broker, services, key = stack
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=3)
    await ensure_topics(kafka)
    classification, aggregation = services["classification"], services["aggregation"]
    aggregation.start()
    classification.start()
    per_round = 1500

    # Round 1: classification is killed while it works through the stream.
    await produce_raw(kafka, 0, per_round)
    await wait_for(lambda: classification.handled(FEEDBACK_RAW.name), lambda n: n >= 200, timeout=90, interval=0.05,
                   what="classification to be part-way through")
    classification.kill9()
    classification.start()

    # Round 2: aggregation is killed while it works through the next stream.
    await produce_raw(kafka, per_round, per_round)
    before = await wait_for(lambda: aggregation.handled(FEEDBACK_CLASSIFIED.name), lambda n: n >= 1, timeout=90,
                            what="aggregation to be working")
    await wait_for(lambda: aggregation.handled(FEEDBACK_CLASSIFIED.name), lambda n: n >= before + 200, timeout=90,
                   interval=0.05, what="aggregation to be part-way through")
    aggregation.kill9()
    await asyncio.sleep(0.5)
    aggregation.start()

    url = f"http://127.0.0.1:{aggregation.port}"
    total = 2 * per_round
    counted = await wait_for(lambda: counted_items(url, key), lambda got: got[0] >= total, timeout=300,
                             interval=1, what=f"{total} items in aggregation (seen, and per service: handled)")
    items = counted[1]
    ids = [i["feedback_id"] for i in items]
    assert len(ids) == len(set(ids)) == total, "every item exactly once"
    assert set(ids) == {str(feedback_id_for("crash", str(n))) for n in range(total)}
    assert all(i["revision"] == 1 for i in items)
    records, distinct = await distinct_classified(kafka)
    assert distinct == total, f"{distinct} distinct classified events for {total} items ({records} records)"
