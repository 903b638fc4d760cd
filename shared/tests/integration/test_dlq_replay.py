"""`feedbackloop dlq replay` sends each dead letter back once, even if it fails again straight away."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from feedbackloop.contracts import FEEDBACK_RAW
from feedbackloop.runtime import ensure_topics
from feedbackloop.runtime.dlq import replay_dead_letters
from feedbackloop.settings import KafkaSettings


async def test_replay_moves_what_the_dlq_held_at_the_start_and_stops(kafka_settings: KafkaSettings) -> None:
    await ensure_topics(kafka_settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    for n in range(3):
        await producer.send_and_wait(FEEDBACK_RAW.dlq, f"poison {n}".encode(), key=b"k",
                                     headers=[("dlq.error", b"bad"), ("traceparent", b"00-t")])

    # A consumer that fails everything again: whatever reaches the topic goes straight back to the DLQ.
    back_again = AIOKafkaConsumer(FEEDBACK_RAW.name, bootstrap_servers=kafka_settings.bootstrap_servers,
                                  auto_offset_reset="earliest")
    await back_again.start()

    async def fail_again() -> None:
        async for record in back_again:
            await producer.send_and_wait(FEEDBACK_RAW.dlq, record.value, key=record.key,
                                         headers=[("dlq.error", b"bad again")])

    looping = asyncio.create_task(fail_again())
    try:
        moved = await replay_dead_letters(kafka_settings.bootstrap_servers, FEEDBACK_RAW.name, idle_seconds=2)
    finally:
        looping.cancel()
        await back_again.stop()
        await producer.stop()
    assert moved == 3

    reader = AIOKafkaConsumer(FEEDBACK_RAW.name, bootstrap_servers=kafka_settings.bootstrap_servers,
                              auto_offset_reset="earliest")
    await reader.start()
    try:
        batch = await reader.getmany(timeout_ms=1500)
        records = [r for rs in batch.values() for r in rs]
    finally:
        await reader.stop()
    assert sorted(r.value for r in records) == [b"poison 0", b"poison 1", b"poison 2"]
    assert all(not k.startswith("dlq.") for r in records for k, _ in r.headers), "dlq headers are dropped"
    assert all(dict(r.headers)["traceparent"] == b"00-t" for r in records)
