"""Database engines for a service's own store: SQLite (embedded default) or PostgreSQL.

SQLite is set up for one writer and many readers: WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for
write transactions so that two writers queue instead of failing on a lock upgrade. Read-only work
uses :func:`reader` and a plain ``BEGIN``, which WAL lets run beside a writer.

A request waits at most :data:`POOL_TIMEOUT_SECONDS` for a free connection; then SQLAlchemy raises its
``TimeoutError``, which the HTTP app answers 503 (:mod:`feedbackloop.http.overload`) and a consumer retries.
A SQLite file holds raw feedback and channel secrets: it is created owner-only (0600, its folder 0700), and
SQLite gives its ``-wal`` and ``-shm`` files the same mode.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import FromClause, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from feedbackloop.db.write_lock import BUSY_TIMEOUT_OPTION, BUSY_TIMEOUT_SECONDS

__all__ = [
    "POOL_TIMEOUT_SECONDS",
    "create_engine",
    "insert_ignoring_duplicates",
    "is_sqlite",
    "reader",
    "session_factory",
]


POOL_TIMEOUT_SECONDS = 5


def as_utc(moment: datetime) -> datetime:
    """A time read back from a store, timezone-aware: SQLite returns the UTC it was given without its zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, sqlite_synchronous: str = "FULL") -> AsyncEngine:
    """An engine for ``url``; for a SQLite file, its folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                                   pool_timeout=POOL_TIMEOUT_SECONDS)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        _create_private(Path(parsed.database))
    engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}, pool_timeout=POOL_TIMEOUT_SECONDS)
    default_busy_ms = round(BUSY_TIMEOUT_SECONDS * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite so that BEGIN, savepoints and locks are ours.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={default_busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        readonly = options.get("feedbackloop_readonly", False)
        # a writer that queued behind this process's other writers waits only what is left of its timeout
        busy_ms = default_busy_ms if readonly else options.get(BUSY_TIMEOUT_OPTION, default_busy_ms)
        info = conn.connection.info
        if info.get(BUSY_TIMEOUT_OPTION, default_busy_ms) != busy_ms:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_ms)}")
            info[BUSY_TIMEOUT_OPTION] = busy_ms
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

    return engine


def _create_private(path: Path) -> None:
    """The database file and its folder, owner-only, if missing (an existing file keeps its mode)."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same engine for read-only transactions (on SQLite they do not take the write lock)."""
    return engine.execution_options(feedbackloop_readonly=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def insert_ignoring_duplicates(session: AsyncSession, table: Table | FromClause) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the session's dialect (SQLite or PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()
