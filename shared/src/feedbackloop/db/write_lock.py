"""One writer at a time inside a process on SQLite, and no writer waits longer than the busy timeout in all.

Units of work and the outbox relay queue on a :class:`WriteLock` before they ask SQLite for its write lock:
queued in the process they are woken in order, where SQLite's busy handler would have them sleep and poll
(which made p99 latency seconds long under load). But a writer queued here is also a writer waiting for the
store: when the one ahead of it is stuck on a store locked from outside (another process, a backup), the
queued one must not wait the holder's busy timeout and then a whole one of its own. So the wait here counts:

- the lock is given within :data:`BUSY_TIMEOUT_SECONDS`, or :class:`StoreLocked` is raised — an
  ``OperationalError`` like SQLite's own "database is locked", which a consumer retries and an HTTP request
  answers 503 with ``Retry-After``;
- a writer that waited noticeably gets execution options that shorten SQLite's busy timeout for its
  transaction to what is left (:data:`BUSY_TIMEOUT_OPTION`, read by :func:`feedbackloop.db.create_engine`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import OperationalError

__all__ = ["BUSY_TIMEOUT_OPTION", "BUSY_TIMEOUT_SECONDS", "StoreLocked", "WriteLock"]

#: How long a writer waits for the store's write lock before giving up (SQLite's busy timeout).
BUSY_TIMEOUT_SECONDS = 30.0
#: Execution option: this transaction's busy timeout in milliseconds, when shorter than the default.
BUSY_TIMEOUT_OPTION = "feedbackloop_busy_timeout_ms"
#: A wait for the in-process lock shorter than this is ordinary queueing and leaves the busy timeout alone
#: (changing it costs a statement).
_NOTICEABLE_WAIT = 0.5


class StoreLocked(OperationalError):
    """This process's writer ahead in the queue held the write lock past the busy timeout: the store is stuck."""

    def __init__(self, waited: float) -> None:
        super().__init__(
            "BEGIN IMMEDIATE",
            None,
            sqlite3.OperationalError(f"database is locked (queued {waited:.0f} s behind this process's writer)"),
        )


class WriteLock:
    """An ``asyncio.Lock`` whose wait is bounded by the store's busy timeout."""

    def __init__(self, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._lock = asyncio.Lock()

    async def acquire(self) -> dict[str, Any]:
        """Wait for the lock; the execution options for the transaction that follows (empty when none needed).

        Raises :class:`StoreLocked` when the lock is not given within the timeout.
        """
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise StoreLocked(time.monotonic() - started) from None
        waited = time.monotonic() - started
        if waited < _NOTICEABLE_WAIT:
            return {}
        return {BUSY_TIMEOUT_OPTION: max(1, round((self.timeout - waited) * 1000))}

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[dict[str, Any]]:
        """``async with lock.hold() as options:`` — the lock held, and the options for the transaction."""
        options = await self.acquire()
        try:
            yield options
        finally:
            self.release()
