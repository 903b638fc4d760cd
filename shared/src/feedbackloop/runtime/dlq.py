"""Dead letters: sending a record that cannot be handled to ``<topic>.dlq`` (:func:`send_to_dlq`, with why and
where in its headers), and replaying a dead-letter topic: each record goes back to its origin topic, once.

The replay consumes ``<topic>.dlq`` in its own consumer group and commits after each record is
re-published, so running it twice does not replay twice; the dead-letter headers are dropped and
the original headers (``traceparent``…) kept. Consumers that already processed an event skip it.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from feedbackloop import metrics
from feedbackloop.contracts.topics import dlq_name
from feedbackloop.logs import get_logger
from feedbackloop.retry import Stopped, retry_until_stopped

__all__ = ["REPLAY_GROUP", "dead_letter_headers", "replay_dead_letters", "send_to_dlq"]

log = get_logger(__name__)

REPLAY_GROUP = "feedbackloop-dlq-replay"


def dead_letter_headers(record: ConsumerRecord[bytes, bytes], error: BaseException, attempts: int,
                        group: str) -> list[tuple[str, bytes]]:
    """The record's own headers (earlier ``dlq.*`` ones dropped) plus why and where it failed: ``dlq.error``,
    ``dlq.error_type``, ``dlq.stack`` (the last frames), ``dlq.attempts``, ``dlq.origin.topic`` /
    ``.partition`` / ``.offset``, ``dlq.consumer_group`` and ``dlq.failed_at``."""
    why = {
        "dlq.error": str(error)[:1000] or type(error).__name__,
        "dlq.error_type": type(error).__name__,
        "dlq.stack": "".join(traceback.format_exception(error, limit=-6))[-2000:],
        "dlq.attempts": attempts,
        "dlq.origin.topic": record.topic,
        "dlq.origin.partition": record.partition,
        "dlq.origin.offset": record.offset,
        "dlq.consumer_group": group,
        "dlq.failed_at": datetime.now(UTC).isoformat(),
    }
    return [(k, v) for k, v in (record.headers or []) if not k.startswith("dlq.")] + [
        (k, str(v).encode()) for k, v in why.items()]


async def replay_dead_letters(bootstrap: str, topic: str, idle_seconds: float = 3.0) -> int:
    """Re-publish what ``<topic>.dlq`` held when the replay started; returns how many records moved.

    Records dead-lettered after the start (their timestamp is later) are left for the next run, so a
    record that fails again and lands back in the DLQ is not replayed again by the same run.
    """
    started_ms = int(time.time() * 1000)
    consumer = AIOKafkaConsumer(
        dlq_name(topic),
        bootstrap_servers=bootstrap,
        group_id=REPLAY_GROUP,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await consumer.start()
    await producer.start()
    moved = 0
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
            if not batch:
                return moved  # every partition is read up to the start, or paused past it
            for tp, records in batch.items():
                for record in records:
                    if record.timestamp >= started_ms:
                        consumer.pause(tp)  # the rest of this partition came after the start
                        break
                    headers = [(k, v) for k, v in (record.headers or []) if not k.startswith("dlq.")]
                    await producer.send_and_wait(topic, record.value, key=record.key, headers=headers)
                    await consumer.commit({TopicPartition(tp.topic, tp.partition): record.offset + 1})
                    moved += 1
    finally:
        await producer.stop()
        await consumer.stop()


async def send_to_dlq(producer: AIOKafkaProducer, record: ConsumerRecord[bytes, bytes], dlq: str, error: BaseException,
                      attempts: int, *, group: str, service: str, stopping: asyncio.Event,
                      max_backoff: float) -> bool:
    """Publish ``record`` as it came to ``dlq`` with :func:`dead_letter_headers`, retrying while the broker is away;
    False when ``stopping`` was set first (the record is then not yet dead-lettered)."""
    headers = dead_letter_headers(record, error, attempts, group)
    try:
        await retry_until_stopped(
            lambda: producer.send_and_wait(dlq, record.value, key=record.key, headers=headers),
            stopping=stopping, retry_if=lambda exc: isinstance(exc, KafkaError), cap=max_backoff,
            on_retry=lambda exc, delay: log.warning("dead-letter topic unreachable, retrying", topic=dlq,
                                                    error=repr(exc), retry_in=round(delay, 2)))
    except Stopped:
        return False
    metrics.EVENTS_DEAD_LETTERED.labels(service, record.topic).inc()
    metrics.EVENTS_CONSUMED.labels(service, record.topic, "dead_lettered").inc()
    log.error("event dead-lettered", topic=record.topic, partition=record.partition, offset=record.offset, dlq=dlq,
              error=str(error)[:300], attempts=attempts)
    return True
