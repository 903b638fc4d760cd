"""One copy at a time: leases for periodic jobs (detectors, retries, digests) when several copies of a
service share one store.

On PostgreSQL a lease is an advisory lock (``pg_try_advisory_lock``) held on a connection of its own for
the duration of the ``async with``; on SQLite (one process per store, the embedded default) every copy
holds it, so code written for many copies runs unchanged on one machine::

    async with leader_lease(engine, "aggregation.detector") as held:
        if held:
            await detect_spikes(uow_factory)

Semantics:

- Never blocks: a copy that does not get the lease is told so (``held`` is ``False``) and skips the round;
  the next tick tries again. Two copies never both hold the same name on one database.
- The lock belongs to the lease's connection: leaving the block (normally or by an exception) releases it,
  and a crashed copy's lock is released by the server when its connection drops, so a dead leader never
  blocks the others for longer than the server takes to notice (TCP keepalive).
- The job's own transactions use their own sessions; the lease orders copies, it is not a transaction.
  Keep a job idempotent anyway (deterministic event ids), since a lease lost mid-round (its connection
  cut) lets another copy start the same round.

:func:`try_transaction_lock` is the transaction-scoped variant used inside one transaction (the outbox relay
takes it so that one copy publishes at a time, in id order); it is released at commit or rollback.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["leader_lease", "lease_key", "try_transaction_lock"]


def lease_key(name: str) -> int:
    """The signed 64-bit advisory-lock key of ``name`` (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


@asynccontextmanager
async def leader_lease(engine: AsyncEngine, name: str) -> AsyncIterator[bool]:
    """Yields ``True`` when this copy holds the lease ``name`` for the block, ``False`` when another does.

    Raises what the store raises when it is unreachable (treat it like any transient store failure).
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lease_key(name)
    async with engine.connect() as conn:
        held = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar_one())
        await conn.commit()
        try:
            yield held
        finally:
            if held:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await conn.commit()


async def try_transaction_lock(conn: AsyncConnection, name: str) -> bool:
    """Take the transaction-scoped advisory lock ``name`` on ``conn`` without waiting; ``True`` when taken.

    Released at the end of the transaction. Always ``True`` off PostgreSQL (SQLite's write lock already
    serialises writers).
    """
    if conn.dialect.name != "postgresql":
        return True
    result = await conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": lease_key(name)})
    return bool(result.scalar_one())
