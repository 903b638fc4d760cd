"""The unit of work: the one owner of a transaction.

A use case opens a unit of work, lets repositories read and write through ``uow.session``, raises
events with :meth:`UnitOfWork.publish`, and commits. The events become outbox rows in the same
transaction as the results, so a result and its event are stored together or not at all; the
outbox relay publishes them afterwards. Repositories never commit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop.contracts.envelope import CONTENT_TYPE, Envelope, encode
from feedbackloop.contracts.topics import Topic
from feedbackloop.db.engine import insert_ignoring_duplicates
from feedbackloop.db.tables import RuntimeTables
from feedbackloop.db.write_lock import WriteLock
from feedbackloop.tracing import publish_headers

__all__ = ["UnitOfWork", "UnitOfWorkFactory"]

_ENVELOPE = Envelope[Any]  # parametrized once: ``Envelope[Any]`` per event is a lookup in pydantic's generics cache


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: RuntimeTables,
        source: str,
        on_commit: asyncio.Event | None = None,
        write_lock: WriteLock | None = None,
    ) -> None:
        self._sessions = sessions
        self._write_lock = write_lock
        self._tables = tables
        self._source = source
        self._service = source.rstrip("/").rsplit("/", 1)[-1]
        self._on_commit = on_commit
        self._pending: list[tuple[Topic, Envelope[Any], dict[str, str]]] = []
        self._processed: list[dict[str, Any]] = []  # event ids handled, inserted in one statement at commit
        self._had_events = False
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        options = await self._write_lock.acquire() if self._write_lock is not None else {}
        try:
            self.session = self._sessions()
            await self.session.begin()
            if options:  # the transaction begins now, with a busy timeout cut to what the queueing left
                await self.session.connection(execution_options=options)
        except BaseException:
            self._release()
            raise
        return self

    def _release(self) -> None:
        if self._write_lock is not None and self._write_lock.locked():
            self._write_lock.release()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
            await self.session.close()
        finally:
            self._release()

    def publish(self, topic: Topic, data: BaseModel, *, event_id: str | None = None) -> Envelope[Any]:
        """Raise an event; it is written to the outbox when the unit of work commits.

        Give a deterministic ``event_id`` when the same input must always yield the same event, so
        that reprocessing after a crash publishes nothing new downstream. The event carries the trace
        context of a ``publish <topic>`` span, child of the current span (see :mod:`feedbackloop.tracing`).
        """
        envelope = self._envelope(topic, data, event_id)
        self._pending.append((topic, envelope, publish_headers(self._service, topic.name, envelope.id)))
        return envelope

    def _envelope(self, topic: Topic, data: BaseModel, event_id: str | None) -> Envelope[Any]:
        """:func:`new_envelope`'s envelope (same attributes, same validation) with ``Envelope[Any]`` parametrized
        once: per event, that lookup in pydantic's generics cache cost more than the validation itself."""
        return _ENVELOPE(
            id=event_id or str(uuid.uuid4()),
            source=self._source,
            type=topic.event_type,
            time=datetime.now(UTC),
            subject=str(getattr(data, topic.key_field)),
            dataschema=f"https://feedbackloop.dev/schemas/{topic.name}.json",
            data=data,
        )

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested transaction: on error, its writes *and* the events raised inside it are undone."""
        pending, processed = list(self._pending), len(self._processed)  # a copy: withdraw() removes from within
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            self._pending[:] = pending
            del self._processed[processed:]
            raise

    def withdraw(self, topic: Topic, subjects: Iterable[str]) -> int:
        """Take back the events on ``topic`` about ``subjects`` raised in this unit of work and not yet written
        to the outbox (an erasure met in the same batch as the item it erases); returns how many."""
        gone = set(subjects)
        kept = [p for p in self._pending if not (p[0].name == topic.name and p[1].subject in gone)]
        withdrawn = len(self._pending) - len(kept)
        self._pending[:] = kept
        return withdrawn

    async def already_processed(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        if not ids:
            return set()
        table = self._tables.processed_events
        rows = await self.session.execute(select(table.c.event_id).where(table.c.event_id.in_(ids)))
        return {r[0] for r in rows}

    async def mark_processed(self, event_id: str, topic: str) -> None:
        """Record ``event_id`` as handled: written with the transaction (one insert for all), undone with the
        savepoint it was marked in."""
        self._processed.append({"event_id": event_id, "topic": topic, "processed_at": datetime.now(UTC)})

    async def commit(self) -> None:
        await self._flush_processed()
        await self._flush_outbox()
        await self.session.commit()
        if self._on_commit is not None and self._had_events:
            self._on_commit.set()

    async def _flush_processed(self) -> None:
        if not self._processed:
            return
        try:
            await self.session.execute(insert(self._tables.processed_events), self._processed)
        except IntegrityError as exc:
            from feedbackloop.runtime.errors import TransientError  # the runtime imports this module

            # Another copy handled some of these events first (a rebalance moved their partition mid-batch):
            # roll back and run the batch again, which skips what is now processed. Nothing twice, nothing lost.
            raise TransientError("events of this batch were processed meanwhile by another consumer") from exc
        self._processed.clear()

    async def _flush_outbox(self) -> None:
        self._had_events = bool(self._pending)
        if not self._pending:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "event_id": env.id,
                "topic": topic.name,
                "key": env.subject,
                "value": encode(env),
                "headers": {"content-type": CONTENT_TYPE, **trace_headers},
                "created_at": now,
                "sent_at": None,
            }
            for topic, env, trace_headers in self._pending
        ]
        # The same event id is the same event: a concurrent copy that queued it already wins.
        await self.session.execute(insert_ignoring_duplicates(self.session, self._tables.outbox), rows)
        self._pending.clear()


class UnitOfWorkFactory:
    """Makes units of work for one service's store; ``outbox_ready`` wakes the relay after a commit."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: RuntimeTables,
        source: str,
        write_lock: WriteLock | None = None,
    ) -> None:
        self.sessions = sessions
        self.tables = tables
        self.source = source
        self.outbox_ready = asyncio.Event()
        # On SQLite, one writer at a time inside the process: units of work queue on this lock instead of
        # busy-waiting on the database lock (whose sleeps made p99 latency seconds long under load); the
        # queueing counts against the busy timeout (feedbackloop.db.write_lock).
        self.write_lock = write_lock

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.tables, self.source, self.outbox_ready, self.write_lock)
