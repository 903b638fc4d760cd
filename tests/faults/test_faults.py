"""Fault injection: a steady stream through the whole loop, one fault mid-stream, then the end state.

Every scenario starts its own stack (broker + the four services as separate processes, real SQLite files, a
real local webhook receiver with a rule matching the enterprise customers' items), streams items to ingest,
injects its fault(s) while the stream runs, and then checks: every accepted item is in aggregation exactly
once with the labels ``POST /v1/classify`` gives its text, and every enterprise item was notified exactly
once (counted by distinct ``webhook-id``). Each scenario records one row of the table that
``make test-faults`` prints and writes to ``var/faults/latest.json``.

Run with ``make test-faults`` (``pytest -m faults tests/faults``); ``make test`` leaves them out.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from feedbackloop.contracts import FEEDBACK_CLASSIFIED, FEEDBACK_RAW, RawFeedback, encode, feedback_id_for
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.contracts.topics import dlq_name
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.testing import wait_for
from tests.faults.harness import SERVICES, Row, Stack, Stream, check, recovery_time, running

pytestmark = pytest.mark.faults

Record = Callable[[Row], None]

#: Items per scenario and the pace they are posted at (items/s): long enough for faults to land mid-stream.
ITEMS = 2000
RATE = 60.0
#: How long a killed or stopped service stays down before it is started again.
DOWN_SECONDS = 3.0


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest) -> Path:
    """Each scenario's stores and service logs, kept under var/faults/runs/<test> for a look after a failure."""
    folder: Path = Path(__file__).resolve().parents[2] / "var" / "faults" / "runs" / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def assert_clean(row: Row) -> None:
    assert row.ok, f"scenario {row.scenario}: {row}"


async def _service_faults(tmp_path: Path, record_row: Record, how: str) -> None:
    async with running(tmp_path / how) as stack:
        started = time.monotonic()
        stream = Stream(stack, how, total=ITEMS, rate=RATE)
        stream.start()
        recoveries: list[float] = []
        notes: list[str] = []
        for turn, name in enumerate(SERVICES):
            await stream.until(0.12 + 0.2 * turn)
            before = set(stream.accepted)
            proc = stack[name]
            if how == "kill9":
                proc.kill9()
            else:
                code = proc.sigterm()
                assert code == 0, f"{name} exited with {code} after SIGTERM:\n{proc.tail()}"
            await asyncio.sleep(DOWN_SECONDS)  # the fault's duration, not a wait for a condition
            proc.start()
            lifted = time.monotonic()
            ready = await stack.wait_ready([proc])
            recoveries.append(await recovery_time(stack, before, lifted))
            notes.append(f"{name} ready {ready:.1f}s")
        await stream.finish()
        row = await check(stack, stream, started, max(recoveries), notes="; ".join(notes))
        record_row(row)
        assert_clean(row)


async def test_kill9_each_service_in_turn(tmp_path: Path, record_row: Record) -> None:
    await _service_faults(tmp_path, record_row, "kill9")


async def test_sigterm_each_service_in_turn(tmp_path: Path, record_row: Record) -> None:
    await _service_faults(tmp_path, record_row, "sigterm")


async def test_broker_killed_and_restarted_then_replay(tmp_path: Path, record_row: Record) -> None:
    """The embedded broker keeps everything in memory: after a restart, `feedbackloop replay all` restores the flow."""
    async with running(tmp_path / "broker") as stack:
        started = time.monotonic()
        stream = Stream(stack, "broker-restart", total=ITEMS, rate=RATE)
        stream.start()
        await stream.until(0.4)
        before = set(stream.accepted)
        stack.broker.kill()
        await asyncio.sleep(DOWN_SECONDS)  # the outage; ingest keeps accepting into its store meanwhile
        await asyncio.to_thread(stack.broker.start)
        await ensure_topics(stack.kafka)
        replayed = stack.replay_all("1h")
        lifted = time.monotonic()
        recover = await recovery_time(stack, before, lifted)
        await stream.finish()
        row = await check(stack, stream, started, recover, notes=" ".join(replayed.split()))
        record_row(row)
        assert_clean(row)


def _hold_write_lock(path: Path, seconds: float, held: threading.Event) -> None:
    """Take SQLite's write lock on ``path`` and keep it: every writer of that store waits, then fails."""
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def test_stores_unavailable_for_a_while(tmp_path: Path, record_row: Record) -> None:
    """Classification's, aggregation's and notification's stores refuse writes for longer than the busy timeout.

    (Making the file read-only does not work here: CI runs as root, and an open SQLite connection keeps
    writing through its file descriptor. A held write lock is what a stuck or unreachable store looks like
    to SQLite: ``database is locked`` after the 30 s busy timeout.)
    """
    async with running(tmp_path / "store") as stack:
        started = time.monotonic()
        stream = Stream(stack, "store-locked", total=ITEMS, rate=RATE)
        stream.start()
        await stream.until(0.25)
        before = set(stream.accepted)
        threads = []
        for name in ("classification", "aggregation", "notification"):
            held = threading.Event()
            thread = threading.Thread(target=_hold_write_lock, args=(stack.folder / f"{name}.db", 35.0, held))
            thread.start()
            threads.append(thread)
            assert await asyncio.to_thread(held.wait, 30), f"could not lock {name}.db"
        for thread in threads:
            await asyncio.to_thread(thread.join)
        lifted = time.monotonic()
        recover = await recovery_time(stack, before, lifted)
        await stream.finish()
        alive = [p.name for ps in stack.procs.values() for p in ps if p.process and p.process.poll() is None]
        assert len(alive) == 4, f"a service died while its store was locked; alive: {alive}"
        row = await check(stack, stream, started, recover, notes="stores write-locked 35 s")
        record_row(row)
        assert_clean(row)


async def _dead_letters(stack: Stack, topic: str) -> list[dict[str, str]]:
    """The headers of every record in ``topic``'s dead-letter topic."""
    consumer = AIOKafkaConsumer(dlq_name(topic), bootstrap_servers=stack.broker.bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[dict[str, str]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            out += [{k: v.decode(errors="replace") for k, v in r.headers} | {"value": (r.value or b"").decode()}
                    for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    return out


async def test_poison_messages_dead_lettered_stream_continues_and_dlq_replay(tmp_path: Path,
                                                                            record_row: Record) -> None:
    async with running(tmp_path / "poison") as stack:
        started = time.monotonic()
        stream = Stream(stack, "poison", total=ITEMS, rate=RATE)
        stream.start()
        await stream.until(0.3)
        now = datetime.now(UTC)
        valid = RawFeedback(feedback_id=feedback_id_for("api", "poison-fixed"), source="api",
                            external_id="poison-fixed", channel="api", text="The export button does nothing",
                            created_at=now, received_at=now)
        valid_event = json.loads(encode(new_envelope(FEEDBACK_RAW, valid, source="/faults", event_id="raw-fixed")))
        schema_violation = {**valid_event, "id": "raw-bad-schema", "data": {**valid_event["data"], "channel": 42}}
        del schema_violation["data"]["text"]
        producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
        await producer.start()
        try:
            # Poison on the topic two services read (aggregation and notification): both must dead-letter it.
            await producer.send_and_wait(FEEDBACK_CLASSIFIED.name, b"{not json", key=b"poison-1")
            await producer.send_and_wait(FEEDBACK_CLASSIFIED.name, json.dumps(schema_violation).encode(),
                                         key=b"poison-2")
            # An event that failed earlier for a cause since fixed: valid now, waiting in the DLQ for a replay.
            # (Only it is in feedback.raw.v1.dlq: `dlq replay` of a record that is still poison loops, see below.)
            await producer.send_and_wait(dlq_name(FEEDBACK_RAW.name), json.dumps(valid_event).encode(),
                                         key=str(valid.feedback_id).encode(),
                                         headers=[("dlq.error", b"a bug fixed since"), ("dlq.attempts", b"3")])
        finally:
            await producer.stop()
        topic = FEEDBACK_CLASSIFIED.name
        letters = await wait_for(lambda: _dead_letters(stack, topic),
                                 lambda got: sum(1 for h in got if "dlq.error_type" in h) >= 4, timeout=240,
                                 what=f"the poison records in {dlq_name(topic)}, from both consumers")
        errors = [h for h in letters if "dlq.error_type" in h]
        assert {h["dlq.origin.topic"] for h in errors} == {topic}
        assert {"aggregation", "notification"} <= {h["dlq.consumer_group"] for h in errors}, errors
        assert all(h["dlq.error"] and int(h["dlq.attempts"]) >= 1 for h in errors), errors
        await stream.until(0.6)  # the stream goes on past the poison
        moved = await asyncio.to_thread(stack.dlq_replay, FEEDBACK_RAW.name)
        assert "replayed 1 events" in moved, moved
        fixed = str(valid.feedback_id)
        await wait_for(stack.stored, lambda items: fixed in {i["feedback_id"] for i in items}, timeout=240,
                       what="the replayed event in aggregation")
        again = await asyncio.to_thread(stack.dlq_replay, FEEDBACK_RAW.name)
        assert "replayed 0 events" in again, again
        await stream.finish()
        row = await check(stack, stream, started, 0.0, extra_expected={fixed},
                          notes=f"dlq replay: {moved.strip()}; again: {again.strip()}")
        record_row(row)
        assert_clean(row)


async def test_webhook_receiver_down_then_back(tmp_path: Path, record_row: Record) -> None:
    async with running(tmp_path / "receiver") as stack:
        started = time.monotonic()
        stream = Stream(stack, "receiver-down", total=ITEMS, rate=RATE)
        stream.start()
        await stream.until(0.2)
        await stack.receiver.down()
        await asyncio.sleep(50)  # the receiver's outage (the retry schedule spans ~90 s)
        await stack.receiver.up()
        lifted = time.monotonic()
        await stream.finish()
        row = await check(stack, stream, started, 0.0, notes="receiver down 50 s")
        row.recover_s = round(time.monotonic() - lifted, 1)
        record_row(row)
        assert_clean(row)


async def test_two_copies_of_classification_and_notification_one_killed(tmp_path: Path,
                                                                        record_row: Record) -> None:
    async with running(tmp_path / "copies", copies={"classification": 2, "notification": 2}) as stack:
        started = time.monotonic()
        stream = Stream(stack, "two-copies", total=ITEMS, rate=RATE)
        stream.start()
        await stream.until(0.4)
        before = set(stream.accepted)
        for name in ("classification", "notification"):
            stack.procs[name][1].kill9()
        lifted = time.monotonic()
        recover = await recovery_time(stack, before, lifted)
        await stream.finish()
        row = await check(stack, stream, started, recover, notes="copy #1 of each killed, not restarted")
        record_row(row)
        assert_clean(row)


def test_fault_table_counts_a_loss(tmp_path: Path) -> None:
    """The row's verdict is not vacuous: one missing item or one doubled notification fails it."""
    clean = Row("x", 10, 10, 10, 0, 0, 2, 2, 0, 0, 0, 1.0, 2.0)
    assert clean.ok
    assert not Row("x", 10, 10, 9, 0, 1, 2, 2, 0, 0, 0, 1.0, 2.0).ok
    assert not Row("x", 10, 10, 10, 0, 0, 2, 2, 1, 0, 0, 1.0, 2.0).ok
