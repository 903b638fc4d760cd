"""What the apply path remembers, so that it sends few statements per item.

* :class:`StoreCache`, one per service (the consumer's subscriptions make it): the apply path's statements,
  built once per dialect (their cache keys are computed once, not per execution), and per database
  (engine) the facts a committed transaction of this process established that stay true for good, whatever
  other copies do: ``("label", kind, value) -> key`` (label keys are never changed or deleted) and
  ``("named", theme_id) -> (seen_at, name)``, a lower bound of the stored naming (it only moves forward).
  It also holds the ids of the items of the batch the consumer is about to apply (:meth:`StoreCache.hint_batch`).
* :class:`TransactionMemo`, one per session: what the open transaction has written, so later items of the
  same unit of work skip a statement that would change nothing.

Both are shortcuts only: a fresh :class:`StoreCache` is always correct, just slower.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from aggregation.store._sql import InsertOf, dialect_insert

__all__ = ["StoreCache", "TransactionMemo"]


class StoreCache:
    """Statements per dialect and lasting committed facts per engine, kept by one service between units of work."""

    #: Committed facts kept per engine; past it the cache starts over (it is only a shortcut).
    COMMITTED_CAP = 200_000

    def __init__(self) -> None:
        self._statements: dict[tuple[str, str], Any] = {}
        self._committed: weakref.WeakKeyDictionary[Engine, dict[Hashable, Any]] = weakref.WeakKeyDictionary()
        self._batch: tuple[str, ...] = ()

    def hint_batch(self, feedback_ids: Iterable[str]) -> None:
        """The items of the consumer's next batch (its ``prepare`` step), so that the first item applied reads
        what the store holds of all of them at once. A hint only: a wrong one costs a query, nothing else."""
        self._batch = tuple(feedback_ids)

    def batch_hint(self) -> tuple[str, ...]:
        return self._batch

    def statement(self, session: Session | AsyncSession, name: str, build: Callable[[InsertOf], Any]) -> Any:
        """The statement ``name``, built once per dialect by ``build(insert)`` (``insert``: the dialect's, with
        ON CONFLICT) and reused. Parameters go with each execution, never into the statement."""
        dialect = session.get_bind().dialect.name
        stmt = self._statements.get((dialect, name))
        if stmt is None:
            stmt = self._statements[(dialect, name)] = build(dialect_insert(session))
        return stmt

    def committed(self, engine: Engine, key: Hashable) -> Any | None:
        """The lasting fact under ``key`` that a committed transaction on ``engine`` established; None if unknown."""
        return self._committed.get(engine, {}).get(key)

    def remember(self, engine: Engine, facts: Mapping[Hashable, Any]) -> None:
        """Keep ``facts`` of a transaction that has just committed on ``engine``."""
        cache = self._committed.setdefault(engine, {})
        if len(cache) + len(facts) > self.COMMITTED_CAP:
            cache.clear()
        cache.update(facts)


class TransactionMemo:
    """What the open transaction of one session has already written, so that later items of the same
    unit of work can skip a statement that would change nothing.

    Each fact is tagged with the innermost transaction (savepoint) that was open when it was learned.
    When a savepoint or the transaction rolls back, the facts it (or a savepoint inside it) learned are
    dropped: a dead-lettered event's writes are not remembered. When the outermost transaction commits,
    the lasting facts (those whose kind is in :attr:`LASTING`) move to the service's :class:`StoreCache`
    and the memo empties. Get it with :meth:`of`; it lives in ``session.info``.
    """

    LASTING = ("label", "named")

    def __init__(self, session: Session, engine: Engine, cache: StoreCache) -> None:
        self._session = session
        self._engine = engine
        self.cache = cache
        self._facts: dict[Hashable, tuple[SessionTransaction | None, Any]] = {}
        event.listen(session, "after_soft_rollback", self._rolled_back)
        event.listen(session, "after_commit", self._committed)

    @classmethod
    def of(cls, session: Session | AsyncSession, cache: StoreCache) -> TransactionMemo:
        """The session's memo, made on first use with ``cache`` (later callers share that one)."""
        sync = session.sync_session if isinstance(session, AsyncSession) else session
        memo = sync.info.get("aggregation.memo")
        if memo is None:
            memo = sync.info["aggregation.memo"] = cls(sync, sync.get_bind().engine, cache)
        return memo

    def get(self, key: Hashable) -> Any | None:
        """The fact under ``key``, from this transaction or else from a committed one; None if unknown."""
        fact = self._facts.get(key)
        if fact is not None:
            return fact[1]
        return self.cache.committed(self._engine, key)

    def put(self, key: Hashable, value: Any) -> None:
        self._facts[key] = (self._session.get_nested_transaction() or self._session.get_transaction(), value)

    def _rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        self._facts = {k: f for k, f in self._facts.items() if not undone_by(f[0], previous)}

    def _committed(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: its facts stand or fall with the enclosing transaction
        lasting: dict[Hashable, Any] = {k: f[1] for k, f in self._facts.items()
                                        if isinstance(k, tuple) and k[0] in self.LASTING}
        self._facts = {}
        if lasting:
            self.cache.remember(self._engine, lasting)


def undone_by(txn: SessionTransaction | None, rolled_back: SessionTransaction) -> bool:
    """Whether what was done in ``txn`` went with ``rolled_back`` (it is that transaction or one nested in it)."""
    while txn is not None:
        if txn is rolled_back:
            return True
        txn = txn.parent
    return False
