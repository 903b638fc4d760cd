"""Several copies of a service on one PostgreSQL store: the outbox relay and leader leases.

These run on a real throwaway PostgreSQL in every suite (the point is PostgreSQL's locking), and the
lease's SQLite behaviour is checked beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from feedbackloop.contracts import FEEDBACK_RAW, RawFeedback, feedback_id_for
from feedbackloop.db import (
    UnitOfWorkFactory,
    add_runtime_tables,
    create_engine,
    leader_lease,
    session_factory,
    try_transaction_lock,
)
from feedbackloop.runtime import OutboxRelay, ensure_topics, make_producer
from feedbackloop.settings import KafkaSettings

metadata = MetaData()
tables = add_runtime_tables(metadata)


def raw(n: int, key: str) -> RawFeedback:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return RawFeedback(feedback_id=feedback_id_for("pg", key), source="pg", external_id=key, channel="api",
                       text=f"item {n}", created_at=now, received_at=now)


async def read_topic(kafka: KafkaSettings, expected: int, timeout: float = 30) -> list[tuple[bytes, str]]:
    consumer = AIOKafkaConsumer(FEEDBACK_RAW.name, bootstrap_servers=kafka.bootstrap_servers,
                                auto_offset_reset="earliest")
    await consumer.start()
    seen: list[tuple[bytes, str]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idle = 0
        while loop.time() < deadline and (len(seen) < expected or idle < 2):
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                seen += [(r.key or b"", json.loads(r.value)["id"]) for r in records]
    finally:
        await consumer.stop()
    return seen


async def outbox_store(url: str, kafka: KafkaSettings) -> tuple[AsyncEngine, UnitOfWorkFactory]:
    """A fresh store with the runtime tables (an outbox) and the topics created."""
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await ensure_topics(kafka)
    return engine, UnitOfWorkFactory(session_factory(engine), tables, "/test")


async def test_two_relays_on_one_outbox_publish_each_event_once_in_key_order(
    postgres_url: Callable[[str], str], kafka_settings: KafkaSettings
) -> None:
    engine, uow_factory = await outbox_store(postgres_url("relay"), kafka_settings)
    keys = [f"key-{k}" for k in range(5)]
    total = 600
    for start in range(0, total, 100):  # several commits, as many use cases would make
        async with uow_factory() as uow:
            for n in range(start, start + 100):
                uow.publish(FEEDBACK_RAW, raw(n, keys[n % len(keys)]), event_id=f"evt-{n:04d}")
            await uow.commit()

    producers = [make_producer(kafka_settings, f"relay-{i}") for i in range(2)]
    relays = [
        OutboxRelay(service="test", engine=engine, tables=tables, producer=p, wake=asyncio.Event(),
                    retention=timedelta(days=1), batch_size=50)
        for p in producers
    ]
    for producer in producers:
        await producer.start()
    try:
        sent = [0, 0]

        async def drain(i: int) -> None:
            while True:
                got = await relays[i].publish_pending()
                sent[i] += got
                unsent = await count_unsent(engine)
                if unsent == 0:
                    return
                await asyncio.sleep(0)

        await asyncio.wait_for(asyncio.gather(drain(0), drain(1)), timeout=60)
    finally:
        for producer in producers:
            await producer.stop()
        await engine.dispose()

    assert sum(sent) == total, f"relays claimed {sent} rows for {total} events"
    records = await read_topic(kafka_settings, total)
    ids = [event_id for _, event_id in records]
    assert len(ids) == len(set(ids)) == total, f"{len(ids)} records, {len(set(ids))} distinct, {total} expected"
    for key in keys:
        mine = [int(event_id.split("-")[1]) for k, event_id in records if k.decode() == str(raw(0, key).feedback_id)]
        assert mine == sorted(mine), f"events of {key} out of order: {mine}"


async def count_unsent(engine: AsyncEngine) -> int:
    outbox = tables.outbox
    async with engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))).scalar_one())


async def test_a_relay_round_skips_while_another_copy_holds_the_relay_lock(
    postgres_url: Callable[[str], str], kafka_settings: KafkaSettings
) -> None:
    from feedbackloop.runtime.relay import RELAY_LOCK

    engine, uow_factory = await outbox_store(postgres_url("relay"), kafka_settings)
    async with uow_factory() as uow:
        uow.publish(FEEDBACK_RAW, raw(0, "k"), event_id="evt-held")
        await uow.commit()
    producer = make_producer(kafka_settings, "relay")
    await producer.start()
    relay = OutboxRelay(service="test", engine=engine, tables=tables, producer=producer, wake=asyncio.Event(),
                        retention=timedelta(days=1))
    try:
        async with engine.begin() as other_copy:
            assert await try_transaction_lock(other_copy, RELAY_LOCK)
            assert await relay.publish_pending() == 0
            assert await count_unsent(engine) == 1
        assert await relay.publish_pending() == 1
        assert await count_unsent(engine) == 0
    finally:
        await producer.stop()
        await engine.dispose()


async def test_a_leader_lease_is_held_by_one_copy_at_a_time_on_postgresql(
    postgres_url: Callable[[str], str],
) -> None:
    url = postgres_url("lease")
    first, second = create_engine(url), create_engine(url)  # two copies: two pools, two sets of connections
    try:
        async with leader_lease(first, "detector") as held_first:
            async with leader_lease(second, "detector") as held_second:
                assert (held_first, held_second) == (True, False)
            async with leader_lease(second, "digest") as other_job:
                assert other_job, "a lease of another name is independent"
        async with leader_lease(second, "detector") as held_after:
            assert held_after, "leaving the block releases the lease"

        entered = asyncio.Event()
        release = asyncio.Event()

        async def crashing_leader() -> None:
            async with leader_lease(first, "detector") as held:
                assert held
                entered.set()
                await release.wait()
                raise RuntimeError("the job failed")

        task = asyncio.create_task(crashing_leader())
        await entered.wait()
        async with leader_lease(second, "detector") as held_during:
            assert not held_during
        release.set()
        with contextlib.suppress(RuntimeError):
            await task
        async with leader_lease(second, "detector") as held_after_failure:
            assert held_after_failure, "a failed job gives the lease back"
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_leader_lease_on_sqlite_is_always_held(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/lease.db")
    try:
        async with leader_lease(engine, "detector") as one, leader_lease(engine, "detector") as two:
            assert one and two
    finally:
        await engine.dispose()
