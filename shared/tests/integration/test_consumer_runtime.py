"""The consumer runtime and the outbox relay against a real broker and a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import OperationalError

from feedbackloop.contracts import FEEDBACK_RAW, Envelope, RawFeedback, encode, feedback_id_for
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory, add_runtime_tables, create_engine, session_factory
from feedbackloop.runtime import (
    Consumer,
    OutboxRelay,
    PoisonMessage,
    Subscription,
    TransientError,
    ensure_topics,
    make_producer,
)
from feedbackloop.runtime.relay import replay_outbox
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import store_url, wait_for

metadata = MetaData()
handled = Table(
    "handled", metadata, Column("event_id", String, primary_key=True), Column("text", String), Column("n", Integer)
)
tables = add_runtime_tables(metadata)


def raw_event(n: int, text: str | None = None, event_id: str | None = None) -> Envelope[Any]:
    now = datetime.now(UTC)
    data = RawFeedback(
        feedback_id=feedback_id_for("t", str(n)),
        source="t",
        external_id=str(n),
        channel="api",
        text=text or f"item {n}",
        created_at=now,
        received_at=now,
    )
    return new_envelope(FEEDBACK_RAW, data, source="/test", event_id=event_id or f"e{n}")


async def produce(kafka: KafkaSettings, values: list[bytes], key: bytes = b"k") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(FEEDBACK_RAW.name, value, key=key)
    finally:
        await producer.stop()


async def read_all(kafka: KafkaSettings, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:

        async def more() -> int:
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(r for rs in batch.values() for r in rs)
            return len(records)

        await wait_for(more, lambda n: n >= expected, timeout=timeout, what=f"{expected} records on {topic}")
        await asyncio.sleep(0.3)  # a short grace read: anything beyond `expected` would be a duplicate
        await more()
    finally:
        await consumer.stop()
    return records


@asynccontextmanager
async def running(
    tmp_path: Path, kafka: KafkaSettings, handler: Callable[..., Any], prepare: Callable[..., Any] | None = None,
    finish: Callable[..., Any] | None = None, prepare_ahead: bool = False, **options: Any
) -> AsyncIterator[tuple[Consumer, UnitOfWorkFactory, Any]]:
    engine = create_engine(store_url(tmp_path, "svc"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await ensure_topics(kafka)
    uow = UnitOfWorkFactory(session_factory(engine), tables, "/test")
    producer = make_producer(kafka, "test")
    await producer.start()
    consumer = Consumer(
        service="test",
        group_id="test",
        subscriptions=[Subscription(FEEDBACK_RAW, handler, prepare, finish, prepare_ahead)],
        uow=uow,
        kafka=kafka,
        producer=producer,
        **options,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer, uow, engine
    finally:
        consumer.stop()
        await task
        await producer.stop()
        await engine.dispose()


async def count(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(handled))).scalar_one())


async def record(uow: UnitOfWork, event: Envelope[Any]) -> None:
    await uow.session.execute(insert(handled).values(event_id=event.id, text=event.data.text, n=1))


async def test_each_event_is_handled_once_and_duplicates_are_skipped(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    events = [raw_event(n) for n in range(20)]
    values = [encode(e) for e in events] + [encode(events[3]), encode(events[7])]  # redelivered copies
    async with running(tmp_path, kafka_settings, record) as (_, _, engine):
        await produce(kafka_settings, values)
        await wait_for(lambda: count(engine), lambda n: n == 20, what="20 handled events")
        async with engine.connect() as conn:
            processed = (await conn.execute(select(func.count()).select_from(tables.processed_events))).scalar_one()
    assert processed == 20


async def test_prepare_sees_each_batch_before_its_handlers_and_its_failure_changes_nothing(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    prepared: list[list[str]] = []
    order: list[str] = []

    async def prepare(batch: Any) -> None:
        prepared.append([e.id for e in batch])
        order.append("prepare")
        if len(prepared) == 1:
            raise RuntimeError("the model is warming up")  # a failed warm-up: the handlers still run

    async def handler(uow: UnitOfWork, event: Envelope[Any]) -> None:
        order.append("handle")
        await record(uow, event)

    events = [raw_event(n) for n in range(30)]
    async with running(tmp_path, kafka_settings, handler, prepare) as (_, _, engine):
        await produce(kafka_settings, [encode(e) for e in events])
        await wait_for(lambda: count(engine), lambda n: n == 30, what="30 handled events")
    assert sorted(i for batch in prepared for i in batch) == sorted(e.id for e in events)
    assert order[0] == "prepare" and max(len(b) for b in prepared) > 1, "batches, not single events"


async def test_poison_and_failing_events_go_to_the_dlq_and_the_stream_goes_on(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    attempts: dict[str, int] = {}

    async def handler(uow: UnitOfWork, event: Envelope[Any]) -> None:
        if event.data.text == "reject me":
            raise PoisonMessage("the domain refuses this item")
        if event.data.text == "explode":
            attempts[event.id] = attempts.get(event.id, 0) + 1
            raise ZeroDivisionError("classifier bug")
        await record(uow, event)

    bad_schema = json.loads(encode(raw_event(90)))
    bad_schema["data"]["channel"] = "fax"
    values = [
        encode(raw_event(1)),
        b"{not json",
        json.dumps(bad_schema).encode(),
        encode(raw_event(2, "reject me")),
        encode(raw_event(3, "explode")),
        encode(raw_event(4)),
    ]
    async with running(tmp_path, kafka_settings, handler, max_attempts=3) as (consumer, _, engine):
        await produce(kafka_settings, values)
        dead = await read_all(kafka_settings, FEEDBACK_RAW.dlq, 4)
        await wait_for(lambda: count(engine), lambda n: n == 2, what="the two good events")
        assert consumer.state == "running"

    assert len(dead) == 4, [r.value for r in dead]
    by_error = {dict(r.headers)["dlq.error_type"].decode(): dict(r.headers) for r in dead}
    assert set(by_error) == {"DecodeError", "PoisonMessage", "ZeroDivisionError"}
    crashed = by_error["ZeroDivisionError"]
    assert crashed["dlq.attempts"] == b"3" and attempts == {"e3": 3}
    assert crashed["dlq.origin.topic"] == FEEDBACK_RAW.name.encode() and crashed["dlq.origin.offset"] == b"4"
    assert b"ZeroDivisionError" in crashed["dlq.stack"]
    assert {r.value for r in dead} >= {b"{not json"}, "the DLQ keeps the original bytes"


async def test_transient_store_failure_is_retried_never_skipped(tmp_path: Path, kafka_settings: KafkaSettings) -> None:
    failures = {"left": 3}

    async def flaky(uow: UnitOfWork, event: Envelope[Any]) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        await record(uow, event)

    async with running(tmp_path, kafka_settings, flaky) as (_, _, engine):
        await produce(kafka_settings, [encode(raw_event(n)) for n in range(5)])
        await wait_for(lambda: count(engine), lambda n: n == 5, what="all five after the store came back")
    dead = await read_topic_now(kafka_settings, FEEDBACK_RAW.dlq)
    assert dead == []


async def read_topic_now(kafka: KafkaSettings, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=1000)
        return [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()


async def test_a_run_of_dead_letters_stalls_the_consumer(tmp_path: Path, kafka_settings: KafkaSettings) -> None:
    async with running(tmp_path, kafka_settings, record, max_dead_in_row=3) as (consumer, _, _):
        await produce(kafka_settings, [b"garbage"] * 10)

        async def state() -> str:
            return consumer.state

        await wait_for(state, lambda s: s == "stalled", what="the consumer to stall")
    assert "more than 3 events in a row failed" in (consumer.last_error or "")


async def test_relay_publishes_outbox_in_order_and_replay_republishes(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    engine = create_engine(store_url(tmp_path, "relay"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await ensure_topics(kafka_settings)
    uow_factory = UnitOfWorkFactory(session_factory(engine), tables, "/test")
    async with uow_factory() as uow:
        for n in range(30):
            uow.publish(FEEDBACK_RAW, raw_event(0).data, event_id=f"same-key-{n:02d}")
        await uow.commit()
    producer = make_producer(kafka_settings, "relay-test")
    await producer.start()
    relay = OutboxRelay(
        service="test",
        engine=engine,
        tables=tables,
        producer=producer,
        wake=uow_factory.outbox_ready,
        retention=timedelta(days=30),
        batch_size=7,
        poll_interval=0.1,
    )
    task = asyncio.create_task(relay.run())
    try:
        first = await read_all(kafka_settings, FEEDBACK_RAW.name, 30)
        assert [json.loads(r.value)["id"] for r in first] == [f"same-key-{n:02d}" for n in range(30)]
        assert all(dict(r.headers)["traceparent"].startswith(b"00-") for r in first)
        queued = await replay_outbox(engine, tables, datetime.now(UTC) - timedelta(hours=1))
        assert queued == 30
        uow_factory.outbox_ready.set()
        again = await read_all(kafka_settings, FEEDBACK_RAW.name, 60)
        assert [json.loads(r.value)["id"] for r in again[30:]] == [f"same-key-{n:02d}" for n in range(30)]
    finally:
        relay.stop()
        await task
        await producer.stop()
        await engine.dispose()


async def test_events_raised_in_a_failed_savepoint_are_not_published(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    async def publish_then_fail(uow: UnitOfWork, event: Envelope[Any]) -> None:
        uow.publish(FEEDBACK_RAW, event.data, event_id=f"out-{event.id}")
        if event.data.text == "explode":
            raise RuntimeError("after publishing")

    async with running(tmp_path, kafka_settings, publish_then_fail, max_attempts=1) as (_, _, engine):
        await produce(kafka_settings, [encode(raw_event(1, "explode")), encode(raw_event(2))])
        await read_all(kafka_settings, FEEDBACK_RAW.dlq, 1)
        async with engine.connect() as conn:
            rows = (await conn.execute(select(tables.outbox.c.event_id))).scalars().all()
    assert rows == ["out-e2"]


async def test_binary_mode_records_from_a_cloudevents_sdk_are_handled_with_the_key_as_subject(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    """The consumer hands decode the record's headers and key: an SDK's binary-mode record (attributes in
    ``ce_*`` headers, no ``subject``) is handled like ours, its subject the record key."""
    from cloudevents.core.bindings import kafka as ce_kafka
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    seen: list[Envelope[Any]] = []

    async def handler(uow: UnitOfWork, event: Envelope[Any]) -> None:
        seen.append(event)
        await record(uow, event)

    data = raw_event(1, text="from the SDK").data.model_dump(mode="json")
    message = ce_kafka.to_binary(CloudEvent({"type": FEEDBACK_RAW.event_type, "source": "/ci", "id": "sdk-1",
                                             "datacontenttype": "application/json",
                                             "partitionkey": data["feedback_id"]}, data), JSONFormat())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    async with running(tmp_path, kafka_settings, handler) as (_, _, engine):
        await producer.start()
        try:
            await producer.send_and_wait(FEEDBACK_RAW.name, message.value, key=str(message.key).encode(),
                                         headers=list(message.headers.items()))
        finally:
            await producer.stop()
        await wait_for(lambda: count(engine), lambda n: n == 1, what="the SDK's event handled")
    assert [(e.id, e.subject, e.data.text) for e in seen] == [("sdk-1", data["feedback_id"], "from the SDK")]


async def test_a_batch_written_by_finish_lands_whole_and_a_poison_item_in_it_is_isolated(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    """Handlers stage, ``finish`` writes the batch; when that write fails, the batch is handled again one event
    per transaction: the event that breaks it is dead-lettered, every other one lands once."""
    staged: list[Envelope[Any]] = []
    finishes: list[int] = []

    async def stage(uow: UnitOfWork, event: Envelope[Any]) -> None:
        staged.append(event)

    async def write(uow: UnitOfWork) -> None:
        batch, staged[:] = list(staged), []
        finishes.append(len(batch))
        if any(e.data.text == "poison" for e in batch):
            raise ValueError("this batch cannot be written")
        await uow.session.execute(insert(handled), [{"event_id": e.id, "text": e.data.text, "n": 1} for e in batch])

    events = [raw_event(n, text="poison" if n == 7 else None) for n in range(30)]
    async with running(tmp_path, kafka_settings, stage, finish=write, batch_size=50) as (_, _, engine):
        await produce(kafka_settings, [encode(e) for e in events])
        dead = await read_all(kafka_settings, FEEDBACK_RAW.dlq, 1)
        await wait_for(lambda: count(engine), lambda n: n == 29, what="29 items written")
    assert [json.loads(r.value)["id"] for r in dead] == ["e7"]
    assert max(finishes) > 1  # the batch was written as a batch while it could be
    async with engine.connect() as conn:
        ids = {r[0] for r in await conn.execute(select(handled.c.event_id))}
    assert ids == {f"e{n}" for n in range(30)} - {"e7"}


async def test_a_batch_runs_without_savepoints_until_an_event_fails_then_each_event_in_its_own(
    tmp_path: Path, kafka_settings: KafkaSettings
) -> None:
    """Good batches cost no SAVEPOINT statements; a failing event rolls its batch's first try back whole (what the
    events before it wrote is not kept twice), and the batch again, each event in a savepoint, isolates it."""
    statements: list[str] = []

    async def handler(uow: UnitOfWork, event: Envelope[Any]) -> None:
        await record(uow, event)
        if event.data.text == "explode":
            raise ZeroDivisionError("classifier bug")  # after writing: the write must go with it

    async with running(tmp_path, kafka_settings, handler, max_attempts=2, batch_size=50) as (_, _, engine):
        sa_event.listen(engine.sync_engine, "before_cursor_execute",
                        lambda conn, cursor, statement, *rest: statements.append(statement.split()[0].upper()))
        await produce(kafka_settings, [encode(raw_event(n)) for n in range(20)])
        await wait_for(lambda: count(engine), lambda n: n == 20, what="20 handled events")
        assert "SAVEPOINT" not in statements
        await produce(kafka_settings, [encode(raw_event(n, "explode" if n == 25 else None)) for n in range(20, 30)])
        dead = await read_all(kafka_settings, FEEDBACK_RAW.dlq, 1)
        await wait_for(lambda: count(engine), lambda n: n == 29, what="the nine good events of the second batch")
    assert [json.loads(r.value)["id"] for r in dead] == ["e25"]
    assert dict(dead[0].headers)["dlq.attempts"] == b"2"
    assert "SAVEPOINT" in statements, "the failing batch ran again with savepoints"
    async with engine.connect() as conn:
        ids = {r[0] for r in await conn.execute(select(handled.c.event_id))}
        processed = {r[0] for r in await conn.execute(select(tables.processed_events.c.event_id))}
    assert ids == processed == {f"e{n}" for n in range(30)} - {"e25"}


@pytest.mark.parametrize("ahead", [True, False])
async def test_with_prepare_ahead_the_next_batch_is_prepared_while_one_is_handled(
    tmp_path: Path, kafka_settings: KafkaSettings, ahead: bool
) -> None:
    """``prepare_ahead``: batch k+1's ``prepare`` runs before batch k's last handler is done; without it, never.
    Either way every event is handled once, in offset order."""
    steps: list[tuple[str, list[str]]] = []

    async def prepare(batch: Any) -> None:
        steps.append(("prepare", [e.id for e in batch]))

    async def handler(uow: UnitOfWork, event: Envelope[Any]) -> None:
        await asyncio.sleep(0.01)  # the transaction's work, during which the next batch can be prepared
        steps.append(("handle", [event.id]))
        await record(uow, event)

    events = [raw_event(n) for n in range(60)]
    await ensure_topics(kafka_settings)
    await produce(kafka_settings, [encode(e) for e in events])  # all there before the first fetch
    async with running(tmp_path, kafka_settings, handler, prepare, prepare_ahead=ahead, batch_size=10) as (
            _, _, engine):
        await wait_for(lambda: count(engine), lambda n: n == 60, what="60 handled events")
    handled_order = [ids[0] for step, ids in steps if step == "handle"]
    assert handled_order == [e.id for e in events]
    batches = [ids for step, ids in steps if step == "prepare"]
    assert len(batches) > 2
    overlapped = [k for k in range(1, len(batches))
                  if steps.index(("prepare", batches[k])) < steps.index(("handle", [batches[k - 1][-1]]))]
    assert bool(overlapped) is ahead, steps


async def test_processed_ids_are_written_at_commit_and_a_race_lost_is_retried_not_doubled(tmp_path: Path) -> None:
    """Two copies that both handled an event (a rebalance mid-batch): the second commit meets the first's
    processed id and is a transient failure — the batch runs again and skips it — never a second effect."""
    engine = create_engine(store_url(tmp_path, "svc"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    uow = UnitOfWorkFactory(session_factory(engine), tables, "/test")
    try:
        async with uow() as first:
            await first.mark_processed("e1", FEEDBACK_RAW.name)
            async with first.savepoint():
                await first.mark_processed("e2", FEEDBACK_RAW.name)
            with contextlib.suppress(ValueError):
                async with first.savepoint():
                    await first.mark_processed("e3", FEEDBACK_RAW.name)
                    raise ValueError("this event's savepoint rolls back, and its mark with it")
            await first.commit()
        async with uow() as second:
            assert await second.already_processed(["e1", "e2", "e3"]) == {"e1", "e2"}
            await second.mark_processed("e2", FEEDBACK_RAW.name)
            with pytest.raises(TransientError):
                await second.commit()
    finally:
        await engine.dispose()


async def test_events_withdrawn_before_commit_never_reach_the_outbox(tmp_path: Path) -> None:
    """An erasure met in the same batch as the item it erases takes back the item's event; a savepoint that
    rolls back puts a withdrawn event back."""
    engine = create_engine(store_url(tmp_path, "svc"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    uow = UnitOfWorkFactory(session_factory(engine), tables, "/test")
    try:
        async with uow() as work:
            kept, erased, restored = raw_event(1), raw_event(2), raw_event(3)
            for event in (kept, erased, restored):
                work.publish(FEEDBACK_RAW, event.data, event_id=event.id)
            assert work.withdraw(FEEDBACK_RAW, [str(erased.data.feedback_id)]) == 1
            with contextlib.suppress(ValueError):
                async with work.savepoint():
                    work.withdraw(FEEDBACK_RAW, [str(restored.data.feedback_id)])
                    raise ValueError("rolled back: the withdrawal with it")
            await work.commit()
        async with engine.connect() as conn:
            ids = {r[0] for r in await conn.execute(select(tables.outbox.c.event_id))}
        assert ids == {kept.id, restored.id}
    finally:
        await engine.dispose()
