"""Kafka clients as every service configures them, and topic creation.

Only the Kafka protocol is used, so the same code runs on the embedded broker and on Apache Kafka.
Idempotent and transactional producers stay off: the embedded broker lacks them, and exactly-once
effects come from the outbox and idempotent consumers instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from feedbackloop.contracts.topics import TOPICS, dlq_name
from feedbackloop.logs import get_logger
from feedbackloop.settings import KafkaSettings

__all__ = ["all_topic_names", "ensure_topics", "headers_dict", "headers_list", "make_consumer", "make_producer"]

log = get_logger(__name__)
_TOPIC_EXISTS = 36


def make_producer(settings: KafkaSettings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=settings.request_timeout_ms,
    )


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


async def ensure_topics(settings: KafkaSettings, names: Iterable[str] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. Safe to call from every copy."""
    wanted = list(names or all_topic_names())
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=settings.request_timeout_ms
    )
    await admin.start()
    try:
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
    finally:
        await admin.close()


def headers_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in (headers or []) if v is not None}


def headers_list(headers: dict[str, str]) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in headers.items() if v is not None]
