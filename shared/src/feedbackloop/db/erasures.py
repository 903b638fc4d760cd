"""The erasure log every consumer of ``privacy.v1`` keeps beside its own tables.

* ``erasures`` — one row per erasure request applied (its ``request_id``, when, how many items): a request
  already there is not applied again, whatever event id carries it (exactly once, on top of the runtime's
  processed-event log).
* ``erased_items`` — the feedback ids erased, each with its request: a tombstone. An event about one of them that
  arrives *after* the erasure (the topics are read independently, so a ``feedback.raw.v1`` or
  ``feedback.classified.v1`` event still in flight may come later) is ignored instead of storing the text again.

:func:`add_erasure_tables` adds both to a service's ``MetaData`` so that its migrations create them. The helpers
read and write through the caller's session and never commit: the consumer's unit of work does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ErasureTables", "add_erasure_tables", "erased_among", "is_applied", "record_applied"]


@dataclass(frozen=True)
class ErasureTables:
    erasures: Table
    erased_items: Table


def add_erasure_tables(metadata: MetaData) -> ErasureTables:
    erasures = Table(
        "erasures",
        metadata,
        Column("request_id", String(36), primary_key=True),
        Column("applied_at", DateTime(timezone=True), nullable=False),
        Column("customer_id", String(256), nullable=True),
        Column("items", Integer, nullable=False, comment="feedback ids the request listed"),
    )
    erased_items = Table(
        "erased_items",
        metadata,
        Column("feedback_id", String(36), primary_key=True),
        Column("request_id", String(36), nullable=False),
    )
    return ErasureTables(erasures=erasures, erased_items=erased_items)


async def is_applied(session: AsyncSession, tables: ErasureTables, request_id: str) -> bool:
    """Whether the request was applied here before (then applying it again must change nothing)."""
    column = tables.erasures.c.request_id
    found = await session.execute(select(column).where(column == request_id))
    return found.first() is not None


async def record_applied(
    session: AsyncSession, tables: ErasureTables, request_id: str, *, customer_id: str | None,
    feedback_ids: Iterable[str], at: datetime,
) -> None:
    """Record the request and a tombstone for each of its items (an item erased before keeps its first one)."""
    ids = list(dict.fromkeys(feedback_ids))
    await session.execute(insert(tables.erasures).values(request_id=request_id, applied_at=at,
                                                         customer_id=customer_id, items=len(ids)))
    known = await erased_among(session, tables, ids)
    new = [{"feedback_id": fid, "request_id": request_id} for fid in ids if fid not in known]
    if new:
        await session.execute(insert(tables.erased_items), new)


async def erased_among(session: AsyncSession, tables: ErasureTables, feedback_ids: Iterable[str]) -> set[str]:
    """Which of ``feedback_ids`` were erased."""
    ids = list(feedback_ids)
    if not ids:
        return set()
    column = tables.erased_items.c.feedback_id
    return {r[0] for r in await session.execute(select(column).where(column.in_(ids)))}
