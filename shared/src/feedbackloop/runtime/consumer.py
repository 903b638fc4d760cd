"""The consumer runtime: fetch a batch → decode → handle in one transaction → dead-letter → commit offsets.

Each step's contract:

* **fetch** (``getmany``) blocks at most ``poll_timeout``; offsets are never auto-committed.
* **decode** validates each record against its topic's schema; a record that fails is poison.
* **prepare** (optional, per subscription) sees the batch's decoded events before the transaction opens, to do
  work that is cheaper for many at once (classification embeds every text of the batch in one model call). It
  writes nothing and decides nothing: an error there is logged and the handlers run as if it had not been called.
  When every subscription with a ``prepare`` says ``prepare_ahead`` (its state is kept per batch), the next batch
  is fetched, decoded and prepared while this one is handled: a CPU-bound ``prepare`` in a worker thread then
  overlaps the event loop's transaction instead of waiting for it. The batches are still handled and committed
  one at a time, in order; a batch fetched ahead and never handled (the consumer stopped) is not committed, so
  it is read again.
* **handle** runs every new event of the batch in one unit of work, its id recorded in ``processed_events``
  (one insert for the batch, at commit) with its results and outbox rows. The batch runs first without a
  savepoint per event (two statements and two thread hops each, on every event, for a failure that almost
  never comes); if an event fails, that attempt is rolled back whole and the batch runs again with each event
  in a savepoint of its own, where the failing event is retried and dead-lettered as described below.
  A subscription's ``finish`` (optional) then runs once, in the same transaction, to write what its handlers
  staged for the batch as a whole (aggregation merges a batch's rollup deltas). If ``finish`` fails for a
  reason other than a transient one, the batch is handled again one event per transaction, so the event
  that causes it is found and dead-lettered while the others land. An event id seen before is
  skipped (transport is at least once; effects are exactly once). A transient error (store locked
  or away) rolls the batch back and retries it with backoff, forever, skipping nothing. Any other
  error is retried ``max_attempts`` times for that event, then the event is dead-lettered.
* **dead-letter** sends poison records to ``<topic>.dlq`` with the error in headers, after the
  transaction commits and before the offsets move, so a crash in between dead-letters again
  rather than losing the record. More than ``max_dead_in_row`` dead letters in a row stall the
  consumer instead: a bad deploy should stop a stream, not empty it into the DLQ.
* **commit** moves each partition's offset past the batch only once every record before it is
  handled or safely in the DLQ. A commit refused by a rebalance is harmless: the new owner
  re-reads and skips what is already processed.

``stop()`` lets the batch in hand finish and commit, then leaves the group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry.trace import StatusCode

from feedbackloop import metrics
from feedbackloop.contracts.envelope import DecodeError, Envelope, decode
from feedbackloop.db.uow import UnitOfWork, UnitOfWorkFactory
from feedbackloop.logs import get_logger
from feedbackloop.retry import Stopped, retry_until_stopped
from feedbackloop.runtime.dlq import send_to_dlq
from feedbackloop.runtime.errors import PoisonMessage, is_transient
from feedbackloop.runtime.kafka import commit_past, headers_dict, make_consumer, record_lag
from feedbackloop.runtime.subscription import BatchPreparer, Subscription
from feedbackloop.settings import KafkaSettings
from feedbackloop.tracing import consume_span

__all__ = ["Consumer", "ConsumerStalled"]

log = get_logger(__name__)

@dataclass
class _Dead:
    record: ConsumerRecord[bytes, bytes]
    error: BaseException
    attempts: int


@dataclass
class _Batch:
    """Records fetched together, decoded (the undecodable already dead) and prepared."""

    records: list[ConsumerRecord[bytes, bytes]]
    partitions: list[TopicPartition]
    events: list[tuple[ConsumerRecord[bytes, bytes], Subscription, Envelope[Any]]]
    dead: list[_Dead]


class _FinishFailed(Exception):
    """A subscription's ``finish`` failed for a reason that retrying the batch as it is will not cure."""


class _EventFailed(Exception):
    """An event failed while the batch ran without savepoints: the batch runs again, each event in its own."""


class ConsumerStalled(RuntimeError):
    """Too many dead letters in a row: the consumer stops so that a human can look."""


class Consumer:
    def __init__(
        self,
        *,
        service: str,
        group_id: str,
        subscriptions: Sequence[Subscription],
        uow: UnitOfWorkFactory,
        kafka: KafkaSettings,
        producer: AIOKafkaProducer,
        batch_size: int = 200,
        max_attempts: int = 3,
        max_dead_in_row: int = 50,
        poll_timeout: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.service = service
        self.group_id = group_id
        self._subs = {s.topic.name: s for s in subscriptions}
        self._uow = uow
        self._kafka = kafka
        self.producer = producer
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._max_dead_in_row = max_dead_in_row
        self._poll_timeout = poll_timeout
        self._max_backoff = max_backoff
        self._stopping = asyncio.Event()
        self._dead_in_row = 0
        self._consumer: AIOKafkaConsumer | None = None
        self.state = "starting"
        self.last_error: str | None = None

    def stop(self) -> None:
        self._stopping.set()

    @property
    def ready(self) -> bool:
        return self.state in ("running", "retrying")

    async def run(self) -> None:
        """Consume until :meth:`stop`; a stall or an unexpected error ends the loop with ``state`` saying why."""
        consumer = await self._connect()
        if consumer is None:
            return
        ahead = self._prepares_ahead()
        next_batch: asyncio.Task[_Batch | None] | None = None
        try:
            self.state = "running"
            while not self._stopping.is_set():
                batch = await (next_batch or self._fetch(consumer))
                next_batch = None
                if batch is None:
                    continue
                if ahead:
                    next_batch = asyncio.create_task(self._fetch(consumer), name=f"{self.group_id}: next batch")
                if not await self._process(batch):
                    break  # stopping while the batch was retried: leave its offsets for the next owner
                await commit_past(consumer, batch.records)
                await record_lag(consumer, batch.partitions, self.service)
        except ConsumerStalled as exc:
            self.state, self.last_error = "stalled", str(exc)
            log.error("consumer stalled", group=self.group_id, reason=str(exc))
        except Exception as exc:
            self.state, self.last_error = "failed", repr(exc)
            log.exception("consumer failed", group=self.group_id)
            raise
        finally:
            if next_batch is not None:  # fetched ahead and never handled: not committed, read again later
                next_batch.cancel()
                await asyncio.gather(next_batch, return_exceptions=True)
            if self.state in ("running", "retrying"):
                self.state = "stopped"
            await consumer.stop()

    async def _connect(self) -> AIOKafkaConsumer | None:
        async def attempt() -> AIOKafkaConsumer:
            consumer = make_consumer(
                self._kafka, list(self._subs), self.group_id, f"{self.service}-consumer", self._batch_size
            )
            try:
                await consumer.start()
            except KafkaError:
                await consumer.stop()
                raise
            return consumer

        def retrying(exc: BaseException, delay: float) -> None:
            self.last_error = repr(exc)
            log.warning("broker unreachable, retrying", error=repr(exc), retry_in=round(delay, 2))

        if self._stopping.is_set():
            return None
        try:
            consumer = await retry_until_stopped(attempt, stopping=self._stopping, retry_if=_is_kafka_error,
                                                 cap=self._max_backoff, on_retry=retrying)
        except Stopped:
            return None
        self._consumer = consumer
        log.info("consumer started", group=self.group_id, topics=list(self._subs))
        return consumer

    def _prepares_ahead(self) -> bool:
        preparing = [s for s in self._subs.values() if s.prepare is not None]
        return bool(preparing) and all(s.prepare_ahead for s in preparing)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> _Batch | None:
        """The next batch (None when the poll found nothing), in offset order, decoded and prepared."""
        fetched = await consumer.getmany(timeout_ms=int(self._poll_timeout * 1000), max_records=self._batch_size)
        records = sorted((r for rs in fetched.values() for r in rs), key=lambda r: (r.topic, r.partition, r.offset))
        if not records:
            return None
        dead: list[_Dead] = []
        events: list[tuple[ConsumerRecord[bytes, bytes], Subscription, Envelope[Any]]] = []
        for record in records:
            sub = self._subs[record.topic]
            try:
                event = decode(sub.topic, record.value, headers_dict(record.headers), key=record.key)
                events.append((record, sub, event))
            except DecodeError as exc:
                dead.append(_Dead(record, exc, 1))
        await self._prepare(events)
        return _Batch(records, list(fetched), events, dead)

    async def _process(self, batch: _Batch) -> bool:
        started = time.perf_counter()
        records, events, dead = batch.records, batch.events, list(batch.dead)

        def retrying(exc: BaseException, delay: float) -> None:
            self.state, self.last_error = "retrying", repr(exc)
            log.warning("transient failure, retrying batch", error=repr(exc), retry_in=round(delay, 2),
                        size=len(events))

        try:  # a transient failure rolled the batch back: the same batch again, skipping nothing
            dead.extend(await retry_until_stopped(lambda: self._handle(events), stopping=self._stopping,
                                                  retry_if=is_transient, first=0.2, cap=self._max_backoff,
                                                  on_retry=retrying))
        except Stopped:
            return False
        self.state = "running"
        self._check_dead_run(records, {id(d.record) for d in dead})
        for item in sorted(dead, key=lambda d: (d.record.topic, d.record.partition, d.record.offset)):
            if not await send_to_dlq(self.producer, item.record, self._subs[item.record.topic].topic.dlq,
                                     item.error, item.attempts, group=self.group_id, service=self.service,
                                     stopping=self._stopping, max_backoff=self._max_backoff):
                return False
        metrics.EVENT_PROCESSING.labels(self.service).observe(time.perf_counter() - started)
        return True

    async def _prepare(self, events: list[tuple[ConsumerRecord[bytes, bytes], Subscription, Envelope[Any]]]) -> None:
        """Each subscription's ``prepare`` over its events of the batch (outside the transaction)."""
        by_topic: dict[str, tuple[BatchPreparer, list[Envelope[Any]]]] = {}
        for _, sub, event in events:
            if sub.prepare is not None:
                by_topic.setdefault(sub.topic.name, (sub.prepare, []))[1].append(event)
        for topic, (prepare, batch) in by_topic.items():
            try:
                await prepare(batch)
            except Exception as exc:  # a warm-up only: the handlers do the work anyway
                log.warning("batch preparation failed; handling event by event", topic=topic, error=repr(exc))

    async def _handle(
        self, events: list[tuple[ConsumerRecord[bytes, bytes], Subscription, Envelope[Any]]]
    ) -> list[_Dead]:
        try:
            try:
                return await self._handle_together(events, isolated=False)
            except _EventFailed as failed:
                log.info("an event of the batch failed; handling it again with each event in a savepoint",
                         error=repr(failed.__cause__), size=len(events))
                return await self._handle_together(events, isolated=True)
        except _FinishFailed as failed:
            cause = failed.__cause__ or failed
            if len(events) == 1:
                return [_Dead(events[0][0], cause, 1)]
            log.warning("batch write failed; handling the batch event by event to find the cause",
                        error=repr(cause), size=len(events))
            dead: list[_Dead] = []
            for one in events:
                dead.extend(await self._handle([one]))
            return dead

    async def _handle_together(
        self, events: list[tuple[ConsumerRecord[bytes, bytes], Subscription, Envelope[Any]]], *, isolated: bool
    ) -> list[_Dead]:
        """The batch in one unit of work; with ``isolated`` each event in a savepoint (a failing one retried,
        then dead-lettered), without it any failing event raises :class:`_EventFailed` (the unit of work, left
        unfinished, rolls back)."""
        dead: list[_Dead] = []
        outcomes: list[tuple[str, str]] = []  # counted once the batch committed: a retried batch counts once
        async with self._uow() as uow:
            seen = await uow.already_processed(e.id for _, _, e in events)
            for record, sub, event in events:
                if event.id in seen:
                    outcomes.append((record.topic, "duplicate"))
                    continue
                seen.add(event.id)
                failure = await (self._handle_one(uow, sub, event, record) if isolated
                                 else self._handle_unguarded(uow, sub, event, record))
                if failure is None:
                    outcomes.append((record.topic, "handled"))
                else:
                    dead.append(_Dead(record, *failure))
            for finish in {sub.finish: None for _, sub, _ in events if sub.finish is not None}:
                try:
                    await finish(uow)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    raise _FinishFailed from exc
            await uow.commit()
        for topic, outcome in outcomes:
            metrics.EVENTS_CONSUMED.labels(self.service, topic, outcome).inc()
        return dead

    async def _handle_unguarded(
        self, uow: UnitOfWork, sub: Subscription, event: Envelope[Any], record: ConsumerRecord[bytes, bytes]
    ) -> None:
        """Handle one event without a savepoint; a failure other than a transient one raises :class:`_EventFailed`."""
        with consume_span(self.service, record.topic, headers_dict(record.headers), self._span_attributes(
                event, record)):
            log_tokens = structlog.contextvars.bind_contextvars(event_id=event.id)
            try:
                await sub.handler(uow, event)
                await uow.mark_processed(event.id, sub.topic.name)
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise _EventFailed from exc
            finally:
                structlog.contextvars.reset_contextvars(**log_tokens)

    def _span_attributes(self, event: Envelope[Any], record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
        return {
            "messaging.message.id": event.id,
            "messaging.consumer.group.name": self.group_id,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        }

    async def _handle_one(
        self, uow: UnitOfWork, sub: Subscription, event: Envelope[Any], record: ConsumerRecord[bytes, bytes]
    ) -> tuple[BaseException, int] | None:
        """Handle one event in a savepoint, in a ``process <topic>`` span continuing the record's trace;
        returns the error and attempts if it must be dead-lettered."""
        with consume_span(self.service, record.topic, headers_dict(record.headers),
                          self._span_attributes(event, record)) as span:
            # trace_id and span_id are bound to the log lines by the span
            log_tokens = structlog.contextvars.bind_contextvars(event_id=event.id)
            try:
                for attempt in range(1, self._max_attempts + 1):
                    try:
                        async with uow.savepoint():
                            await sub.handler(uow, event)
                            await uow.mark_processed(event.id, sub.topic.name)
                        return None
                    except PoisonMessage as exc:
                        log.warning("event rejected", error=str(exc))
                        span.set_status(StatusCode.ERROR, f"rejected: {exc}"[:300])
                        return exc, attempt
                    except Exception as exc:
                        if is_transient(exc):
                            raise
                        log.warning("event failed", error=repr(exc), attempt=attempt)
                        span.record_exception(exc, attributes={"attempt": attempt})
                        if attempt == self._max_attempts:
                            span.set_status(StatusCode.ERROR, f"dead-lettered after {attempt} attempts")
                            return exc, attempt
                        await asyncio.sleep(0.05 * 2**attempt)
                return None
            finally:
                structlog.contextvars.reset_contextvars(**log_tokens)

    def _check_dead_run(self, records: list[ConsumerRecord[bytes, bytes]], dead_ids: set[int]) -> None:
        for record in records:
            if id(record) in dead_ids:
                self._dead_in_row += 1
                if self._dead_in_row > self._max_dead_in_row:
                    raise ConsumerStalled(
                        f"more than {self._max_dead_in_row} events in a row failed (last at {record.topic}"
                        f"[{record.partition}]@{record.offset}); fix the cause and restart"
                    )
            else:
                self._dead_in_row = 0

def _is_kafka_error(exc: BaseException) -> bool:
    return isinstance(exc, KafkaError)
