"""Two copies of a consumer service on one PostgreSQL database, in one consumer group, process a stream
with nothing lost and nothing doubled: each event is handled by exactly one copy, and the two outbox
relays publish each classified event exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from feedbackloop.broker import EmbeddedBroker
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, FEEDBACK_RAW, RawFeedback, encode, feedback_id_for
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import query_store, wait_for
from tests.postgres.copies import ServiceCopy, child_env, read_topic, two_copies

pytestmark = pytest.mark.e2e


@pytest.fixture
def copies(tmp_path: Path, broker: EmbeddedBroker,
           postgres_url: Callable[[str], str]) -> Iterator[tuple[list[ServiceCopy], str]]:
    url = postgres_url("classification")
    env = child_env(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, KAFKA_TOPIC_PARTITIONS="4",
                    CLASSIFICATION_DATABASE_URL=url, FEEDBACKLOOP_KEYS_FILE=str(tmp_path / "keys.json"),
                    FEEDBACKLOOP_LOG_LEVEL="WARNING")
    with two_copies("classification", env, tmp_path) as started:
        yield started, url


async def produce(kafka: KafkaSettings, start: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        now = datetime.now(UTC)
        texts = ["The app crashes when I export a report", "Please add dark mode", "Love the new dashboard!",
                 "Billing charged me twice, this is unacceptable"]
        for n in range(start, start + count):
            data = RawFeedback(feedback_id=feedback_id_for("two", str(n)), source="two", external_id=str(n),
                               channel="api", text=f"{texts[n % len(texts)]} (#{n})", created_at=now,
                               received_at=now)
            event = new_envelope(FEEDBACK_RAW, data, source="/test", event_id=f"raw-{n}")
            await producer.send(FEEDBACK_RAW.name, encode(event), key=str(data.feedback_id).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def store_counts(url: str) -> tuple[int, int, int]:
    """Classified items, outbox rows, and outbox rows not yet published, in the shared store."""
    ((items, outbox, unsent),) = await query_store(url, """SELECT
        (SELECT count(*) FROM classifications), (SELECT count(*) FROM outbox),
        (SELECT count(*) FROM outbox WHERE sent_at IS NULL)""")
    return int(items), int(outbox), int(unsent)


async def test_two_copies_share_a_stream_and_one_database_with_no_loss_and_no_duplicates(
    copies: tuple[list[ServiceCopy], str], broker: EmbeddedBroker
) -> None:
    running, url = copies
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=4)
    await ensure_topics(kafka)
    for copy in running:
        await wait_for(copy.ready, lambda status: status == 200, timeout=90, what=f"copy on :{copy.port} ready")

    first_round = 600
    await produce(kafka, 0, first_round)
    await wait_for(lambda: store_counts(url), lambda c: c[0] == first_round, timeout=180, interval=0.5,
                   what=f"{first_round} classified items in the shared store")
    shares = [await copy.consumed(FEEDBACK_RAW.name) for copy in running]
    assert sum(shares) == first_round, f"copies handled {shares}: each event exactly once in the group"
    assert all(share > 0 for share in shares), f"both copies took partitions: {shares}"

    total = first_round
    items, outbox, _ = await wait_for(lambda: store_counts(url), lambda c: c[2] == 0, timeout=60, interval=0.5,
                                      what="the shared outbox drained")
    assert (items, outbox) == (total, total), f"{items} items and {outbox} outbox rows for {total} events"
    ids = [e["data"]["feedback_id"] for e in await read_topic(kafka.bootstrap_servers, FEEDBACK_CLASSIFIED.name)]
    expected = {str(feedback_id_for("two", str(n))) for n in range(total)}
    assert set(ids) == expected, f"missing {len(expected - set(ids))}"
    assert len(ids) == total, f"{len(ids) - total} duplicate classified records on the topic"
