"""Kafka clients as every service configures them, and topic creation.

Only the Kafka protocol is used, so the same code runs on the embedded broker and on Apache Kafka.
The producer is idempotent (``acks=all``, no duplicates from its own retries, order kept per partition)
where the broker grants producer ids — Apache Kafka does, the embedded broker does not — which
:func:`grants_producer_ids` asks the broker itself rather than assuming. Exactly-once effects do not depend
on it: they come from the outbox and idempotent consumers; idempotence only spares consumers the duplicates.
Transactional producers stay off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.protocol.transaction import InitProducerIdRequest

from feedbackloop import metrics
from feedbackloop.contracts.topics import TOPICS, dlq_name
from feedbackloop.logs import get_logger
from feedbackloop.settings import KafkaSettings

__all__ = [
    "all_topic_names",
    "commit_past",
    "ensure_topics",
    "grants_producer_ids",
    "headers_dict",
    "headers_list",
    "make_consumer",
    "make_producer",
    "partitions_by_topic",
    "record_lag",
]

log = get_logger(__name__)
_TOPIC_EXISTS = 36
# InitProducerId answers that mean "not yet" (coordinator loading or moving) rather than "not supported".
_RETRIABLE = {14, 15, 16}  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR


def make_producer(settings: KafkaSettings, client_id: str, idempotent: bool = False) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=idempotent,
        linger_ms=5,
        request_timeout_ms=settings.request_timeout_ms,
    )


async def grants_producer_ids(settings: KafkaSettings, attempts: int = 10) -> bool:
    """Whether the broker hands out producer ids (an ``InitProducerId`` request without a transactional id),
    which an idempotent producer needs. ``KAFKA_IDEMPOTENCE=on``/``off`` skips the question."""
    if settings.idempotence != "auto":
        return settings.idempotence == "on"
    client = AIOKafkaClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=settings.request_timeout_ms
    )
    await client.bootstrap()
    try:
        for _ in range(attempts):
            try:
                response = await client.send(client.get_random_node(), InitProducerIdRequest(None, 60_000))
            except KafkaError as exc:
                log.info("broker refused InitProducerId: idempotent producer off", error=repr(exc))
                return False
            if response.error_code == 0:
                return True
            if response.error_code not in _RETRIABLE:
                log.info("broker grants no producer ids: idempotent producer off", error_code=response.error_code)
                return False
            await asyncio.sleep(0.5)
        return False
    finally:
        await client.close()


def make_consumer(
    settings: KafkaSettings, topics: Sequence[str], group_id: str, client_id: str, max_records: int
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        request_timeout_ms=max(settings.request_timeout_ms, 40_000),
    )


def all_topic_names() -> list[str]:
    return [name for t in TOPICS for name in (t.name, dlq_name(t.name))]


@asynccontextmanager
async def _admin(settings: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=settings.request_timeout_ms
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(settings: KafkaSettings, names: Iterable[str] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Safe to call from every copy."""
    wanted = list(names or all_topic_names())
    async with _admin(settings) as admin:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(n, settings.topic_partitions, settings.replication_factor) for n in missing]
        )
    created = []
    for error in response.topic_errors:
        name, code = error[0], error[1]
        if code == 0:
            created.append(name)
        elif code != _TOPIC_EXISTS:
            raise RuntimeError(f"could not create topic {name}: error {code} {error[2] if len(error) > 2 else ''}")
    if created:
        log.info("topics created", topics=created, partitions=settings.topic_partitions)
    return created


async def partitions_by_topic(settings: KafkaSettings) -> dict[str, list[int]]:
    """Every topic the broker has, with its partition numbers.

    Asked with a metadata request for all topics. A consumer's ``partitions_for_topic`` is no substitute: an
    unsubscribed consumer bootstraps with a request for no topics, which Apache Kafka answers with none (the
    embedded broker happens to answer with all), so it knows no partitions there.
    """
    async with _admin(settings) as admin:
        topics = await admin.describe_topics()
    return {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in topics if t["error_code"] == 0}


def headers_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in (headers or []) if v is not None}


def headers_list(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in headers.items() if v is not None]


async def commit_past(consumer: AIOKafkaConsumer, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
    """Commit each partition's offset past the last of ``records``; a commit refused (a rebalance) is harmless:
    the new owner re-reads and skips what is already processed."""
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:
        log.warning("offset commit refused; records will be redelivered and skipped", error=repr(exc))


async def record_lag(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition], service: str) -> None:
    """Set the consumer-lag gauge of each partition (high-water mark minus position)."""
    for tp in partitions:
        high = consumer.highwater(tp)
        if high is None:
            continue
        try:
            position = await consumer.position(tp)
        except KafkaError:
            continue  # partition moved away in a rebalance
        metrics.CONSUMER_LAG.labels(service, tp.topic, str(tp.partition)).set(max(0, high - position))
