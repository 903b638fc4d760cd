"""Writers queued inside a process wait for the store no longer than the busy timeout in all (a real SQLite file).

Ingest's 503 under a store locked from outside depended on it: a request queued behind the outbox relay, itself
stuck for the whole busy timeout on the locked file, used to wait that out and then a full timeout of its own —
and, the lock lifted meanwhile, was stored and answered 202 (the store-locked fault scenario, flaky under load).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from sqlalchemy import MetaData, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from feedbackloop.db import StoreLocked, UnitOfWorkFactory, WriteLock, add_runtime_tables, create_engine
from feedbackloop.db.engine import session_factory


@contextmanager
def locked_from_outside(path: Path) -> Iterator[None]:
    """Another connection holds SQLite's write lock on ``path`` until the block ends."""
    held, lift = threading.Event(), threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            held.set()
            lift.wait(60)
            connection.execute("ROLLBACK")
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        lift.set()
        thread.join()


@asynccontextmanager
async def store(path: Path, timeout: float) -> AsyncIterator[tuple[AsyncEngine, UnitOfWorkFactory, WriteLock]]:
    """A SQLite store with the runtime tables, its units of work queued on a write lock of ``timeout`` seconds."""
    metadata = MetaData()
    tables = add_runtime_tables(metadata)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        lock = WriteLock(timeout=timeout)
        yield engine, UnitOfWorkFactory(session_factory(engine), tables, "/feedbackloop/lock-test", lock), lock
    finally:
        await engine.dispose()


async def test_a_writer_queued_behind_a_stuck_one_fails_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with store(path, timeout=1.0) as (_, uow, lock):

        inside = asyncio.Event()

        async def stuck_writer() -> None:  # waits on the locked file with the full (30 s) busy timeout
            async with uow() as work:
                inside.set()
                await work.session.execute(text("DELETE FROM outbox"))

        with locked_from_outside(path):
            stuck = asyncio.create_task(stuck_writer())
            await inside.wait()
            started = time.monotonic()
            with pytest.raises(StoreLocked) as raised:
                async with uow():
                    pass
            waited = time.monotonic() - started
        await stuck  # the lock lifted, the stuck writer goes through and lets go
        assert isinstance(raised.value, OperationalError) and "database is locked" in str(raised.value.orig)
        assert waited < 5, f"queued {waited:.1f} s: longer than its 1 s timeout"
        assert not lock.locked()


async def test_the_time_spent_queueing_shortens_the_wait_on_the_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with store(path, timeout=2.0) as (engine, uow, lock):
        with locked_from_outside(path):
            await lock.acquire()  # this process's other writer, busy for 1.5 s (not on the file)
            asyncio.get_running_loop().call_later(1.5, lock.release)
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"):
                async with uow() as work:  # queued 1.5 s, then the file's lock for the ~0.5 s left
                    await work.session.execute(text("DELETE FROM outbox"))
            waited = time.monotonic() - started
        assert 1.4 < waited < 10, f"failed after {waited:.1f} s: the file's 30 s busy timeout was not cut"
        async with uow() as work:  # the connection's busy timeout is back to the default once the lock lifts
            await work.session.execute(text("DELETE FROM outbox"))
            await work.commit()
        async with engine.connect() as conn:
            busy = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert busy == 30000
