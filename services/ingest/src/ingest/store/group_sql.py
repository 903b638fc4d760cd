"""The group commit's read and write of ``feedback_items``, each in ONE round trip to the store.

Through the ORM session a statement on SQLite is four hops to aiosqlite's thread and back (cursor, execute, fetch,
close), each a turn of the busy event loop. Here, on SQLite, the group's one read (which ids are stored, which
stored items share a content key) and its one insert go to the driver connection of the same transaction as
``execute_fetchall`` / ``executemany``: one hop each. The statements are written once; the values are converted
by the columns' own SQLAlchemy types (the same text a statement through the session would store). Other stores
(PostgreSQL: one network round trip per statement anyway) take the repository's statements.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from ingest.store.models import FeedbackItem
from ingest.store.repository import FeedbackRepository

__all__ = ["GroupSql"]

_ITEMS: Table = FeedbackItem.__table__  # type: ignore[assignment]
_COLUMNS = ("feedback_id", "source", "external_id", "created_at", "received_at", "item", "raw", "content_key")
_INSERT = f"INSERT INTO feedback_items ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
# Two index lookups (the primary key; content_key + created_at), not one OR that could scan the table.
_LOAD = (
    "SELECT feedback_id, NULL, NULL FROM feedback_items WHERE feedback_id IN (SELECT value FROM json_each(?)) "
    "UNION ALL "
    "SELECT feedback_id, content_key, created_at FROM feedback_items "
    "WHERE content_key IN (SELECT value FROM json_each(?)) AND created_at >= ? AND created_at <= ?"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class GroupSql:
    """The group commit's load and insert for one unit of work's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = FeedbackRepository(session)

    async def load(
        self, ids: Sequence[str], content: tuple[Collection[str], datetime, datetime] | None
    ) -> tuple[set[str], dict[str, list[tuple[datetime, str]]] | None]:
        """Which of ``ids`` are stored; on SQLite, in the same round trip, the stored items having one of the
        ``content`` keys, created in [since, until], as :meth:`FeedbackRepository.with_content` gives them
        (earliest first, ties by id). Elsewhere the second is None: the caller asks ``with_content`` for it."""
        driver, dialect = await self._driver()
        if driver is None:
            return await self.repo.existing_ids(ids), None
        keys, since, until = content if content is not None else ((), _EPOCH, _EPOCH)
        to_db, from_db = _datetime_processors(dialect)
        rows = await driver.execute_fetchall(
            _LOAD, (json.dumps(list(ids)), json.dumps(sorted(keys)), to_db(since), to_db(until)))
        pairs = sorted((from_db(r[2]), r[0], r[1]) for r in rows if r[1] is not None)
        found: dict[str, list[tuple[datetime, str]]] = {}
        for created, feedback_id, key in pairs:
            aware = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
            found.setdefault(key, []).append((aware, feedback_id))
        return {r[0] for r in rows if r[1] is None}, found

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """:meth:`FeedbackRepository.insert_many`, in one hop on SQLite."""
        if not rows:
            return
        driver, dialect = await self._driver()
        if driver is None:
            await self.repo.insert_many(rows)
            return
        convert = _row_processors(dialect)
        await driver.executemany(_INSERT, [tuple(f(row[c]) for c, f in convert) for row in rows])

    async def _driver(self) -> tuple[Any, Dialect]:
        """aiosqlite's connection inside the session's transaction (begun if it was not), or None elsewhere."""
        connection = await self.session.connection()
        dialect = connection.dialect
        if dialect.name != "sqlite" or dialect.driver != "aiosqlite":
            return None, dialect
        raw = await connection.get_raw_connection()
        return raw.driver_connection, dialect


def _identity(value: Any) -> Any:
    return value


def _processor(column: str, dialect: Dialect) -> Callable[[Any], Any]:
    kind = _ITEMS.c[column].type
    return kind.dialect_impl(dialect).bind_processor(dialect) or _identity


@functools.lru_cache(maxsize=8)
def _datetime_processors(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    kind = _ITEMS.c.created_at.type.dialect_impl(dialect)
    to_db = kind.bind_processor(dialect) or _identity
    from_db = kind.result_processor(dialect, None) or _identity
    return to_db, from_db


@functools.lru_cache(maxsize=8)
def _row_processors(dialect: Dialect) -> list[tuple[str, Callable[[Any], Any]]]:
    return [(column, _processor(column, dialect)) for column in _COLUMNS]
