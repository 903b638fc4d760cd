"""The outbox relay: publishes committed outbox rows in order and marks them sent.

Contract: a row is marked sent only after the broker acknowledged it, so a crash re-publishes
(consumers skip event ids they have processed) and never drops. Rows are sent in id order and the
producer keeps that order per partition; sends are awaited in order, never gathered out of order.
On SQLite (one process per store) rows are read, published, then marked in a second short write
transaction, so the write lock is never held while the broker is slow. On PostgreSQL several copies of a
service share one outbox: a round takes a transaction-scoped advisory lock (one copy publishes at a
time, so two copies never interleave the events of one key out of order; the others skip the round),
claims the rows with ``FOR UPDATE SKIP LOCKED`` (never waiting on rows another transaction holds, e.g. a
replay), publishes them and marks them sent in the same transaction.
Sent rows are kept ``retention`` for replay, then pruned together with old processed-event ids.

Recovery from a broker that lost its data (the embedded broker keeps everything in memory): the
relay remembers the last record it had acknowledged on each partition and checks, at start and
every ``loss_check_interval``, that the broker still holds it — and, after a restart of the
service itself, that a topic it has published to is not empty. If either fails, it queues every
retained event of that topic again (the topics it has published to are read from the store once, then kept as
rows are sent); consumers skip what they already processed, so the loop
converges with nothing lost and nothing doubled. (End offsets are no proof on the embedded broker:
it reports a batch's base offset + 1 there, so the check reads the remembered record itself.)
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from feedbackloop import metrics
from feedbackloop.db.engine import is_sqlite, reader
from feedbackloop.db.lease import try_transaction_lock
from feedbackloop.db.tables import RuntimeTables
from feedbackloop.db.write_lock import WriteLock
from feedbackloop.logs import get_logger
from feedbackloop.retry import Stopped, retry_until_stopped, sleep_unless
from feedbackloop.runtime.kafka import ensure_topics, headers_list, partitions_by_topic
from feedbackloop.settings import KafkaSettings

__all__ = ["OutboxRelay", "lost_topics", "replay_outbox"]

log = get_logger(__name__)

RELAY_LOCK = "feedbackloop.outbox-relay"


class OutboxRelay:
    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        tables: RuntimeTables,
        producer: AIOKafkaProducer,
        wake: asyncio.Event,
        retention: timedelta,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
        kafka: KafkaSettings | None = None,
        loss_check_interval: float = 15.0,
        write_lock: WriteLock | None = None,
    ) -> None:
        self.service = service
        self._engine = engine
        self._tables = tables
        self.producer = producer
        self._wake = wake
        self._retention = retention
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self._sqlite = is_sqlite(str(engine.url))
        self._kafka = kafka
        self._loss_check_interval = loss_check_interval
        self._write_lock = write_lock or WriteLock()
        # (topic, partition) -> (offset, event id) of the last record the broker acknowledged there
        self._last_acked: dict[tuple[str, int], tuple[int, str]] = {}
        # Topics with sent rows retained: read from the store at the first check (and after a prune), then kept
        # as rows are sent. Reading them each check scanned every retained row (30 days of them) every 15 s.
        self._published_topics: set[str] | None = None
        self.connected = False
        self.last_error: str | None = None
        self._last_loss_check = self._last_backlog = self._last_prune = 0.0  # monotonic times of the last runs

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Publish until :meth:`stop`; broker or store failures are retried with backoff, the rows kept."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                sent = await retry_until_stopped(self._pass, stopping=self._stopping, retry_if=_any_error,
                                                 cap=self._max_backoff, on_retry=self._failed)
            except Stopped:
                return
            if sent < self._batch_size:  # a full batch: more are waiting, go on at once
                await sleep_unless(self._wake, self._poll_interval)

    async def _pass(self) -> int:
        """One batch published, and the periodic checks that are due; returns how many rows were sent."""
        if self._kafka is not None and time.monotonic() - self._last_loss_check > self._loss_check_interval:
            await self.recover_if_broker_lost()
            self._last_loss_check = time.monotonic()
        sent = await self.publish_pending()
        self.connected = True
        now = time.monotonic()
        if now - self._last_backlog > 5:
            await self._measure_backlog()
            self._last_backlog = now
        if now - self._last_prune > 3600:
            await self.prune()
            self._last_prune = now
        return sent

    def _failed(self, exc: BaseException, delay: float) -> None:
        """Broker or store away: keep the rows, try again later."""
        self.connected = not isinstance(exc, KafkaError)
        self.last_error = repr(exc)
        self._last_loss_check = 0.0  # after an outage, look at the broker's state first
        log.warning("outbox relay failed, retrying", error=repr(exc), retry_in=round(delay, 2))

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent."""
        outbox = self._tables.outbox
        query = (
            select(outbox.c.id, outbox.c.event_id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        if self._sqlite:
            async with reader(self._engine).begin() as conn:
                rows = (await conn.execute(query)).all()
            if not rows:
                return 0
            await self._send(rows)
            async with self._write_lock.hold() as options:
                engine = self._engine.execution_options(**options) if options else self._engine  # options: rare
                async with engine.begin() as conn:
                    await conn.execute(
                        update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=datetime.now(UTC))
                    )
        else:
            async with self._engine.begin() as conn:
                if not await try_transaction_lock(conn, RELAY_LOCK):
                    return 0  # another copy is publishing; it takes these rows too
                rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
                if not rows:
                    return 0
                await self._send(rows)
                await conn.execute(
                    update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=datetime.now(UTC))
                )
        for row in rows:
            metrics.EVENTS_PUBLISHED.labels(self.service, row.topic).inc()
        if self._published_topics is not None:
            self._published_topics.update(row.topic for row in rows)
        return len(rows)

    async def _send(self, rows: Any) -> None:
        futures = []
        for row in rows:  # send() enqueues in call order; awaiting the futures afterwards keeps that order
            futures.append(
                await self.producer.send(
                    row.topic, row.value, key=row.key.encode(), headers=headers_list(row.headers or {})
                )
            )
        for row, future in zip(rows, futures, strict=True):
            sent = await future
            self._last_acked[(sent.topic, sent.partition)] = (sent.offset, row.event_id)

    async def recover_if_broker_lost(self) -> int:
        """Queue every retained event of a topic again if the broker lost records of it; returns how many."""
        if self._kafka is None:
            return 0
        if self._published_topics is None:
            outbox = self._tables.outbox
            async with reader(self._engine).begin() as conn:
                rows = await conn.execute(select(outbox.c.topic).where(outbox.c.sent_at.is_not(None)).distinct())
                self._published_topics = {topic for (topic,) in rows.all()}
        published = sorted(self._published_topics)
        if not published:
            return 0
        lost = set(await lost_topics(self._kafka, published, dict(self._last_acked)))
        if not lost:
            return 0
        log.warning(
            "the broker lost events this service published; re-publishing its retained outbox", topics=sorted(lost)
        )
        self._last_acked = {k: v for k, v in self._last_acked.items() if k[0] not in lost}
        await ensure_topics(self._kafka)
        queued = await replay_outbox(self._engine, self._tables, datetime(1970, 1, 1, tzinfo=UTC), sorted(lost))
        metrics.BROKER_LOSS_RECOVERIES.labels(self.service).inc()
        self._wake.set()
        return queued

    async def _measure_backlog(self) -> None:
        outbox = self._tables.outbox
        async with reader(self._engine).begin() as conn:
            count = (
                await conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))
            ).scalar_one()
        metrics.OUTBOX_BACKLOG.labels(self.service).set(count)

    async def prune(self) -> None:
        """Forget published events and processed ids older than the retention."""
        cutoff = datetime.now(UTC) - self._retention
        async with self._engine.begin() as conn:
            sent = await conn.execute(delete(self._tables.outbox).where(self._tables.outbox.c.sent_at < cutoff))
            seen = await conn.execute(
                delete(self._tables.processed_events).where(self._tables.processed_events.c.processed_at < cutoff)
            )
        if sent.rowcount:
            self._published_topics = None  # a topic may have no retained row left: read them again
        if sent.rowcount or seen.rowcount:
            log.info("pruned retained events", outbox=sent.rowcount, processed=seen.rowcount)


async def lost_topics(
    kafka: KafkaSettings, published: list[str], last_acked: dict[tuple[str, int], tuple[int, str]]
) -> list[str]:
    """Topics of ``published`` the broker lost records of: missing, empty, or no longer holding a remembered record."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        request_timeout_ms=kafka.request_timeout_ms,
        enable_auto_commit=False,
        auto_offset_reset="none",  # a remembered offset past the log's end must raise, not silently move
    )
    await consumer.start()
    try:
        existing = await partitions_by_topic(kafka)
        lost = {t for t in published if t not in existing}
        partitions = [TopicPartition(t, p) for t in published for p in existing.get(t, ())]
        ends = await consumer.end_offsets(partitions) if partitions else {}
        for topic in set(published) - lost:
            if not any(end > 0 for tp, end in ends.items() if tp.topic == topic):
                lost.add(topic)
        remembered = {TopicPartition(t, p): v for (t, p), v in last_acked.items() if t not in lost and t in existing}
        if remembered:
            consumer.assign(list(remembered))
            for tp, (offset, _) in remembered.items():
                consumer.seek(tp, offset)
            lost |= await _topics_missing_records(consumer, remembered)
    finally:
        await consumer.stop()
    return sorted(lost)


async def _topics_missing_records(
    consumer: AIOKafkaConsumer, remembered: dict[TopicPartition, tuple[int, str]], timeout: float = 5.0
) -> set[str]:
    """Topics where the broker no longer returns the remembered event at its remembered offset.

    A partition whose log now ends before that offset, holds another event there, or returns nothing at all
    within ``timeout`` counts as lost: re-publishing is harmless (consumers skip what they processed), missing
    a loss is not. (A freshly re-created topic may already hold a few new records, so "not empty" is no proof.)
    """
    lost: set[str] = set()
    pending = dict(remembered)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        try:
            batch = await consumer.getmany(*pending, timeout_ms=500)
        except OffsetOutOfRangeError as exc:
            for tp in exc.args[0] if exc.args and isinstance(exc.args[0], dict) else list(pending):
                lost.add(tp.topic)
                pending.pop(tp, None)
            continue
        for tp, records in batch.items():
            if tp not in pending:
                continue
            offset, event_id = pending.pop(tp)
            first = next((r for r in records if r.offset == offset), None)
            found = json.loads(first.value).get("id") if first is not None and first.value else None
            if found != event_id:
                lost.add(tp.topic)
    lost |= {tp.topic for tp in pending}
    return lost


async def replay_outbox(
    engine: AsyncEngine, tables: RuntimeTables, since: datetime, topics: list[str] | None = None
) -> int:
    """Mark every retained event published at or after ``since`` as unsent, so the relay publishes it again.

    Safe at any time: consumers skip event ids they have processed. Returns the number of events queued.
    """
    outbox = tables.outbox
    stmt = update(outbox).where(outbox.c.created_at >= since)
    if topics:
        stmt = stmt.where(outbox.c.topic.in_(topics))
    async with engine.begin() as conn:
        result = await conn.execute(stmt.values(sent_at=None))
    return int(result.rowcount or 0)


def _any_error(exc: BaseException) -> bool:
    return isinstance(exc, Exception)  # never a cancellation
