"""The outbox rows a unit of work writes at commit: the rows the SQLAlchemy insert writes (values converted by the
columns' own types), a repeated event id kept once, and a store refusing the rows raising SQLAlchemy's exception.

(A direct aiosqlite path for these rows was tried for speed and taken out: a write lock held past the busy timeout
no longer turned into ingest's 503 — ``tests/faults``' store-locked scenario caught it.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.exc import IntegrityError

from feedbackloop.contracts import CONTENT_TYPE, FEEDBACK_RAW, RawFeedback, decode, feedback_id_for
from feedbackloop.db import UnitOfWorkFactory, add_runtime_tables, create_engine, session_factory
from feedbackloop.db.engine import insert_ignoring_duplicates


def raw_feedback(n: int) -> RawFeedback:
    now = datetime(2026, 3, 1, 12, 0, n, tzinfo=UTC)
    return RawFeedback(feedback_id=feedback_id_for("t", str(n)), source="t", external_id=str(n), channel="api",
                       text=f"item {n} — ünïcode", created_at=now, received_at=now)


async def test_outbox_rows_are_stored_as_the_sqlalchemy_insert_stores_them(
    database_url: Callable[[str], str],
) -> None:
    metadata = MetaData()
    tables = add_runtime_tables(metadata)
    engine = create_engine(database_url(f"outbox-{uuid.uuid4().hex[:6]}"))
    stored = text("SELECT event_id, topic, key, value, headers, created_at, sent_at FROM outbox ORDER BY id")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        uow = UnitOfWorkFactory(session_factory(engine), tables, "/feedbackloop/outbox-test")
        async with uow() as work:
            for n in range(2):
                work.publish(FEEDBACK_RAW, raw_feedback(n), event_id=f"event-{n}")
            work.publish(FEEDBACK_RAW, raw_feedback(0), event_id="event-0")  # the same event again: kept once
            await work.commit()
        async with engine.connect() as conn:
            typed = [dict(r) for r in (await conn.execute(select(tables.outbox).order_by(tables.outbox.c.id)))
                     .mappings()]
            as_written = (await conn.execute(stored)).all()
        async with uow() as work:  # the same values again, through the SQLAlchemy statement
            await work.session.execute(text("DELETE FROM outbox"))
            rows = [{k: v for k, v in r.items() if k != "id"} for r in typed]
            await work.session.execute(insert_ignoring_duplicates(work.session, tables.outbox), rows)
            await work.commit()
        async with engine.connect() as conn:
            as_sqlalchemy_writes = (await conn.execute(stored)).all()
    finally:
        await engine.dispose()
    assert as_written == as_sqlalchemy_writes, "the same stored values, to the byte"
    assert [r["event_id"] for r in typed] == ["event-0", "event-1"]
    for n, r in enumerate(typed):
        envelope = decode(FEEDBACK_RAW, r["value"], r["headers"])
        assert envelope.data == raw_feedback(n) and r["key"] == envelope.subject and r["sent_at"] is None
        assert r["headers"]["content-type"] == CONTENT_TYPE and r["headers"]["traceparent"].startswith("00-")


async def test_a_store_refusing_the_outbox_rows_raises_sqlalchemys_integrity_error(tmp_path: Path) -> None:
    # SQLite on every run, PostgreSQL's included: the driver path under test is aiosqlite's (PostgreSQL goes
    # through the SQLAlchemy insert, which raises IntegrityError itself)
    url = f"sqlite+aiosqlite:///{tmp_path / 'refuse.db'}"
    metadata = MetaData()
    tables = add_runtime_tables(metadata)
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON outbox "
                                    "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"))
        uow = UnitOfWorkFactory(session_factory(engine), tables, "/feedbackloop/outbox-test")
        with pytest.raises(IntegrityError, match="outbox refused"):
            async with uow() as work:
                work.publish(FEEDBACK_RAW, raw_feedback(1))
                await work.commit()
        async with engine.connect() as conn:
            assert (await conn.execute(select(tables.outbox.c.id))).all() == [], "nothing was written"
    finally:
        await engine.dispose()
