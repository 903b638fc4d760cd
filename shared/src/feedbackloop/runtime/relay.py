"""The outbox relay: publishes committed outbox rows in order and marks them sent.

Contract: a row is marked sent only after the broker acknowledged it, so a crash re-publishes
(consumers skip event ids they have processed) and never drops. Rows are sent in id order and the
producer keeps that order per partition; sends are awaited in order, never gathered out of order.
On SQLite (one process per store) rows are read, published, then marked in a second short write
transaction, so the write lock is never held while the broker is slow. On PostgreSQL the rows are
claimed with ``FOR UPDATE SKIP LOCKED`` so that several copies of a service share one outbox.
Sent rows are kept ``retention`` for replay, then pruned together with old processed-event ids.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from feedbackloop import metrics
from feedbackloop.db.engine import is_sqlite, reader
from feedbackloop.db.tables import RuntimeTables
from feedbackloop.logs import get_logger
from feedbackloop.runtime._wait import sleep_unless
from feedbackloop.runtime.kafka import headers_list

__all__ = ["OutboxRelay", "replay_outbox"]

log = get_logger(__name__)


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
    ) -> None:
        self.service = service
        self._engine = engine
        self._tables = tables
        self._producer = producer
        self._wake = wake
        self._retention = retention
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self._sqlite = is_sqlite(str(engine.url))
        self.connected = False
        self.last_error: str | None = None

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Publish until :meth:`stop`; broker or store failures are retried with backoff."""
        delay = 0.5
        last_prune = 0.0
        last_backlog = 0.0
        while not self._stopping.is_set():
            try:
                self._wake.clear()
                sent = await self.publish_pending()
                self.connected = True
                delay = 0.5
                now = time.monotonic()
                if now - last_backlog > 5:
                    await self._measure_backlog()
                    last_backlog = now
                if now - last_prune > 3600:
                    await self.prune()
                    last_prune = now
                if sent == self._batch_size:
                    continue
                await sleep_unless(self._wake, self._poll_interval)
            except Exception as exc:  # broker or store away: keep the rows, try again later
                self.connected = not isinstance(exc, KafkaError)
                self.last_error = repr(exc)
                log.warning("outbox relay failed, retrying", error=repr(exc), retry_in=delay)
                await sleep_unless(self._stopping, delay)
                delay = min(delay * 2, self._max_backoff)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent."""
        outbox = self._tables.outbox
        query = (
            select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
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
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=datetime.now(UTC))
                )
        else:
            async with self._engine.begin() as conn:
                rows = (await conn.execute(query.with_for_update(skip_locked=True))).all()
                if not rows:
                    return 0
                await self._send(rows)
                await conn.execute(
                    update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=datetime.now(UTC))
                )
        for row in rows:
            metrics.EVENTS_PUBLISHED.labels(self.service, row.topic).inc()
        return len(rows)

    async def _send(self, rows: Any) -> None:
        futures = []
        for row in rows:  # send() enqueues in call order; awaiting the futures afterwards keeps that order
            futures.append(
                await self._producer.send(
                    row.topic, row.value, key=row.key.encode(), headers=headers_list(row.headers or {})
                )
            )
        for future in futures:
            await future

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
        if sent.rowcount or seen.rowcount:
            log.info("pruned retained events", outbox=sent.rowcount, processed=seen.rowcount)


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
