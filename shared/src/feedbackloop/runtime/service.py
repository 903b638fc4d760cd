"""One service's running parts, started and stopped in the same order by all four services.

Start: engine → schema (migrate, or check and refuse) → workers (they need only the store) → the
HTTP server may answer. In the background: producer → topics → outbox relay → consumers, retried
until the broker answers, so that a broker outage delays publishing but never stops ingest from
accepting.
Stop (SIGTERM): consumers finish their batch and commit → workers → relay → producer → engine → trace
exporter flushed. Tracing (:mod:`feedbackloop.tracing`) is configured first, from the ``OTEL_*`` environment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from feedbackloop.db.engine import create_engine, is_sqlite, reader, session_factory
from feedbackloop.db.migrate import SchemaBehind, check_current, upgrade
from feedbackloop.db.tables import RuntimeTables
from feedbackloop.db.uow import UnitOfWorkFactory
from feedbackloop.db.write_lock import WriteLock
from feedbackloop.logs import get_logger
from feedbackloop.retry import Stopped, retry_until_stopped
from feedbackloop.runtime.consumer import Consumer
from feedbackloop.runtime.kafka import ensure_topics, grants_producer_ids, make_producer
from feedbackloop.runtime.relay import OutboxRelay
from feedbackloop.runtime.subscription import Subscription
from feedbackloop.settings import ServiceSettings
from feedbackloop.tracing import configure_tracing, flush_tracing

__all__ = ["ServiceRuntime", "Worker", "WorkerFactory", "start_runtime"]

log = get_logger(__name__)


class Worker(Protocol):
    """A background loop owned by the runtime: ``run`` returns after ``stop`` is called."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


#: Builds a worker from the started runtime (its store and unit-of-work factory exist by then).
WorkerFactory = Callable[["ServiceRuntime"], Worker]


@dataclass
class ServiceRuntime:
    """A service's store, producer, relay, consumers and workers; ``checks()`` is its readiness."""

    name: str
    settings: ServiceSettings
    engine: AsyncEngine
    tables: RuntimeTables
    uow: UnitOfWorkFactory
    producer: AIOKafkaProducer
    relay: OutboxRelay
    consumers: list[Consumer] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    broker_connected: bool = False
    idempotent_producer: bool = False

    @property
    def read_engine(self) -> AsyncEngine:
        return reader(self.engine)

    async def checks(self) -> dict[str, str]:
        """Readiness of each part: ``ok`` or what is wrong."""
        result: dict[str, str] = {}
        try:
            async with self.read_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            result["store"] = "ok"
        except Exception as exc:  # readiness reports, never raises
            result["store"] = f"unavailable: {exc.__class__.__name__}"
        result["broker"] = (
            "ok"
            if self.broker_connected and self.relay.connected
            else (f"unreachable: {self.relay.last_error or 'connecting'}")
        )
        for consumer in self.consumers:
            result[f"consumer:{consumer.group_id}"] = (
                "ok" if consumer.ready else (f"{consumer.state}: {consumer.last_error or ''}".strip())
            )
        return result


@asynccontextmanager
async def start_runtime(
    *,
    name: str,
    settings: ServiceSettings,
    tables: RuntimeTables,
    migrations: Path,
    subscriptions: Sequence[Subscription] = (),
    workers: Sequence[WorkerFactory] = (),
) -> AsyncIterator[ServiceRuntime]:
    configure_tracing(name)
    engine = create_engine(settings.database_url)
    try:  # a read: a second copy starting beside a busy first one must not wait for the write lock
        await check_current(reader(engine), migrations, name)
    except SchemaBehind:
        if not settings.auto_migrate:
            raise
        await upgrade(engine, migrations)
    write_lock = WriteLock() if is_sqlite(settings.database_url) else None
    uow = UnitOfWorkFactory(session_factory(engine), tables, source=f"/feedbackloop/{name}", write_lock=write_lock)
    producer = make_producer(settings.kafka, client_id=f"{name}-producer")
    relay = OutboxRelay(
        service=name,
        engine=engine,
        tables=tables,
        producer=producer,
        wake=uow.outbox_ready,
        retention=timedelta(days=settings.common.outbox_retention_days),
        kafka=settings.kafka if settings.common.broker_check_seconds > 0 else None,  # 0: a durable broker, no check
        loss_check_interval=settings.common.broker_check_seconds,
        write_lock=write_lock,
    )
    consumers = (
        [
            Consumer(
                service=name,
                group_id=name,
                subscriptions=subscriptions,
                uow=uow,
                kafka=settings.kafka,
                producer=producer,
                batch_size=settings.consumer_batch_size,
                max_attempts=settings.consumer_max_attempts,
                max_dead_in_row=settings.consumer_max_dead_letters_in_row,
            )
        ]
        if subscriptions
        else []
    )
    runtime = ServiceRuntime(
        name=name,
        settings=settings,
        engine=engine,
        tables=tables,
        uow=uow,
        producer=producer,
        relay=relay,
        consumers=consumers,
    )
    runtime.workers = [make(runtime) for make in workers]
    stopping = asyncio.Event()
    tasks: dict[int, asyncio.Task[None]] = {}  # id(part) -> its task

    async def connect() -> None:
        await _choose_producer(runtime, await grants_producer_ids(settings.kafka))
        await runtime.producer.start()
        await ensure_topics(settings.kafka)

    def retrying(exc: BaseException, delay: float) -> None:
        relay.last_error = repr(exc)
        log.warning("broker unreachable, retrying", bootstrap=settings.kafka.bootstrap_servers, error=repr(exc),
                    retry_in=round(delay, 2))

    async def connect_and_run() -> None:
        try:
            await retry_until_stopped(connect, stopping=stopping, retry_if=_broker_away, cap=10.0, on_retry=retrying)
        except Stopped:
            return
        runtime.broker_connected = True
        parts: list[Worker] = [relay, *consumers]
        for part in parts:
            tasks[id(part)] = asyncio.create_task(part.run(), name=f"{name}:{type(part).__name__}")

    # Workers need only the store: they run while the broker is still away (queued webhooks go out).
    for worker in runtime.workers:
        tasks[id(worker)] = asyncio.create_task(worker.run(), name=f"{name}:{type(worker).__name__}")
    starter = asyncio.create_task(connect_and_run(), name=f"{name}:connect")
    try:
        yield runtime
    finally:
        stopping.set()
        await starter
        for group in (consumers, runtime.workers, [relay]):
            for part in group:
                part.stop()
            await asyncio.gather(*(tasks[id(p)] for p in group if id(p) in tasks), return_exceptions=True)
        await runtime.producer.stop()
        await engine.dispose()
        flush_tracing(name)  # spans still queued for the exporter go out before the process exits
        log.info("stopped", service=name)


async def _choose_producer(runtime: ServiceRuntime, idempotent: bool) -> None:
    """Swap in an idempotent producer where the broker grants producer ids (before anything has sent)."""
    if idempotent == runtime.idempotent_producer:
        return
    await runtime.producer.stop()  # never started: releases nothing but keeps aiokafka from warning
    producer = make_producer(runtime.settings.kafka, client_id=f"{runtime.name}-producer", idempotent=idempotent)
    runtime.producer = runtime.relay.producer = producer
    runtime.idempotent_producer = idempotent
    for consumer in runtime.consumers:
        consumer.producer = producer
    log.info("producer chosen", idempotent=idempotent, bootstrap=runtime.settings.kafka.bootstrap_servers)


def _broker_away(exc: BaseException) -> bool:
    return isinstance(exc, KafkaError | OSError)
