"""A batch's classified items, staged in the unit of work and written once, merged, when it commits.

The consumer applies each event of a batch in a savepoint of one transaction. Applying a classified item only
*stages* it here (:meth:`StagedBatch.stage`): what the store held of it before the batch is read once for all
the batch's items (:meth:`StagedBatch.load`, one query for the stored revisions and one for the erased ids),
and later revisions of the same item in the batch are judged against the staged one. The batch is written
when the transaction commits (a ``before_commit`` hook on the session: the merged rollup deltas, the items,
the theme names, dirty hours and cluster sizes in a few statements, :func:`aggregation.domain.batch.batch_writes`),
in the same transaction as the processed event ids and the outbox, or earlier by :meth:`StagedBatch.write`
when a handler must read what the batch wrote (an erasure).

A rolled-back savepoint (a dead-lettered event) drops what it staged; a savepoint that wrote the batch early
and then rolled back puts the batch back as it was. Nothing outlives the session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from aggregation.domain.batch import Staged, batch_writes
from aggregation.domain.items import feedback_row, theme_rows
from aggregation.store.memo import StoreCache, undone_by
from aggregation.store.models import erasure_tables
from aggregation.store.repository import FeedbackRepository, ItemWriter
from aggregation.store.rollups import RollupRepository
from feedbackloop.contracts import ClassifiedFeedback
from feedbackloop.db.erasures import erased_among

__all__ = ["StagedBatch"]


@dataclass
class _Item:
    """One item of the batch: the stored revision and data as read (None: not stored) and the revisions staged
    since, each tagged with the transaction (savepoint) that staged it."""

    stored_revision: int | None
    stored_data: dict[str, Any] | ClassifiedFeedback | None
    revisions: list[tuple[SessionTransaction | None, int, ClassifiedFeedback]] = field(default_factory=list)

    @property
    def revision(self) -> int | None:
        """The revision the batch holds now: the last staged, else the stored one."""
        return self.revisions[-1][2].revision if self.revisions else self.stored_revision

    def copy(self) -> _Item:
        return _Item(self.stored_revision, self.stored_data, list(self.revisions))


@dataclass
class _State:
    items: dict[str, _Item] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)
    hinted: bool = False

    def copy(self) -> _State:
        return _State({k: v.copy() for k, v in self.items.items()}, set(self.erased), self.hinted)


class StagedBatch:
    """The classified items staged in one session's transaction; get it with :meth:`of`."""

    def __init__(self, session: Session, cache: StoreCache) -> None:
        self._session = session
        self.cache = cache
        self._state = _State()
        self._seq = 0
        self._written: list[tuple[SessionTransaction | None, _State]] = []  # early writes: (savepoint, before)
        event.listen(session, "before_commit", self._before_commit)
        event.listen(session, "after_soft_rollback", self._rolled_back)

    @classmethod
    def of(cls, session: AsyncSession, cache: StoreCache) -> StagedBatch:
        """The session's staged batch, made on first use with ``cache`` (later callers share it)."""
        sync = session.sync_session
        staged = sync.info.get("aggregation.staged")
        if staged is None:
            staged = sync.info["aggregation.staged"] = cls(sync, cache)
        return staged

    async def load(self, session: AsyncSession, feedback_id: str) -> None:
        """Read what the store holds of ``feedback_id`` and, the first time, of every item the cache was told
        the batch holds (:meth:`StoreCache.hint_batch`): one query for the stored revisions, one for erasures."""
        state = self._state
        wanted = {feedback_id} if feedback_id not in state.items else set()
        if not state.hinted:
            state.hinted = True
            wanted |= {i for i in self.cache.batch_hint() if i not in state.items}
        if not wanted:
            return
        stored = await FeedbackRepository(session).stored(wanted)
        state.erased |= await erased_among(session, erasure_tables, sorted(wanted))
        for feedback_id_ in wanted:
            revision, data = stored.get(feedback_id_, (None, None))
            state.items[feedback_id_] = _Item(revision, data)

    def erased(self, feedback_id: str) -> bool:
        return feedback_id in self._state.erased

    def revision(self, feedback_id: str) -> int | None:
        """The item's revision as the batch holds it (staged or stored); None when it holds none."""
        item = self._state.items.get(feedback_id)
        return item.revision if item is not None else None

    def stage(self, item: ClassifiedFeedback) -> None:
        """Stage ``item`` as its item's latest revision (:meth:`load` it first)."""
        self._seq += 1
        tag = self._session.get_nested_transaction() or self._session.get_transaction()
        self._state.items[str(item.feedback_id)].revisions.append((tag, self._seq, item))

    def write(self) -> None:
        """Write what is staged now and forget what was read of the store (a handler is about to read or change
        it: the next item reads it again). Put back as it was if the savepoint it runs in rolls back. Call
        through ``AsyncSession.run_sync``."""
        self._written.append((self._session.get_nested_transaction() or self._session.get_transaction(),
                              self._state.copy()))
        self._write()
        self._state = _State()

    def _write(self) -> None:
        staged = [i for i in self._state.items.values() if i.revisions]
        if not staged:
            return
        writes = batch_writes(Staged(_stored_item(i), [(seq, r) for _, seq, r in i.revisions]) for i in staged)
        ItemWriter(self._session, self.cache).replace(
            [feedback_row(i) for i in writes.latest], [t for i in writes.latest for t in theme_rows(i)])
        rollups = RollupRepository(self._session, self.cache)
        rollups.add(writes.rollups)
        rollups.name_themes(writes.names)
        rollups.mark_dirty(writes.dirty_hours)
        rollups.change_clusters(writes.clusters)
        for item in staged:
            latest = item.revisions[-1][2]
            item.stored_revision, item.stored_data, item.revisions = latest.revision, latest, []

    def _before_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: its items are written with the transaction's
        self._write()

    def _rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        for k, (txn, before) in enumerate(self._written):
            if undone_by(txn, previous):  # the early write is undone: the batch is back to what it was then
                self._state, self._written = before, self._written[:k]
                break
        for item in self._state.items.values():
            item.revisions = [r for r in item.revisions if not undone_by(r[0], previous)]


def _stored_item(item: _Item) -> ClassifiedFeedback | None:
    if item.stored_data is None or isinstance(item.stored_data, ClassifiedFeedback):
        return item.stored_data
    return ClassifiedFeedback.model_validate(item.stored_data)

