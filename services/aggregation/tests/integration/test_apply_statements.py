"""Applying a classified item with few statements, without changing what is stored.

The label keys are cached in the process and facts are remembered within a unit of work
(:class:`aggregation.store.memo.TransactionMemo`); these tests check that nothing remembered
outlives a rollback (a dead-lettered event's savepoint, a whole batch), that keys another copy created
are found in the store, and that the number of statements per item stays low. They run on SQLite, or
on PostgreSQL with ``FEEDBACKLOOP_TEST_DATABASE=postgresql``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregation_testkit import classified
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from aggregation.main import MIGRATIONS
from aggregation.service import apply_classified, apply_erasure, write_staged
from aggregation.store.memo import StoreCache
from aggregation.store.models import (
    ClusterRecord,
    DirtyHour,
    FeedbackRecord,
    LabelKey,
    Rollup,
    ThemeCustomer,
    ThemeName,
    ThemeTotal,
    runtime_tables,
)
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, ErasureRequest, new_envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.db.engine import create_engine
from feedbackloop.db.migrate import upgrade

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Boom(Exception):
    pass


def _item(n: int, theme: str, customer: str, *, at: datetime = T0, **changes: Any) -> ClassifiedFeedback:
    return classified(str(n), created_at=at, received_at=at,
                      customer={"id": customer, "plan": "pro", "mrr": 100.0 * (n % 3 + 1)},
                      themes=[{"id": theme, "name": theme.title(), "confidence": 0.8}], **changes)


class Copy:
    """One aggregation process: its own engine and its own cache (statements, label keys) on the shared store."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.cache = StoreCache()

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[UnitOfWork]:
        async with UnitOfWork(self.sessions, runtime_tables, "/test") as uow:
            yield uow

    async def apply(self, uow: UnitOfWork, item: ClassifiedFeedback) -> bool:
        """As the consumer does: in a savepoint."""
        async with uow.savepoint():
            envelope: Any = new_envelope(FEEDBACK_CLASSIFIED, item, source="/test")
            return await apply_classified(uow, envelope, self.cache)

    async def apply_and_fail(self, uow: UnitOfWork, item: ClassifiedFeedback) -> None:
        """A poison event: applied, then its savepoint rolls back."""
        try:
            async with uow.savepoint():
                envelope: Any = new_envelope(FEEDBACK_CLASSIFIED, item, source="/test")
                await apply_classified(uow, envelope, self.cache)
                raise Boom
        except Boom:
            pass


async def _copies(database_url: Callable[[str], str], n: int) -> list[Copy]:
    url = database_url("aggregation")
    first = create_engine(url)
    await upgrade(first, MIGRATIONS)
    return [Copy(first)] + [Copy(create_engine(url)) for _ in range(n - 1)]


async def _check_presence_keys(copy: Copy, expected: dict[str, set[str]]) -> None:
    """Every presence row points at the label keys of its own theme and customer, and the theme totals
    count exactly the ``expected`` customers of each theme."""
    async with copy.sessions() as session:
        labels = {(r.kind, r.key): r.value for (r,) in await session.execute(select(LabelKey))}
        rows = (await session.execute(select(ThemeCustomer).where(ThemeCustomer.bucket == "total"))).scalars().all()
        totals = {r.theme_id: r.customers for (r,) in await session.execute(select(ThemeTotal)) if r.customers}
    found: dict[str, set[str]] = {}
    for row in rows:
        theme = labels.get(("theme", row.theme_key))
        assert theme is not None, f"presence row with theme key {row.theme_key} that has no label"
        assert labels.get(("customer", row.customer_key)) == row.customer_id
        if row.count > 0:
            found.setdefault(theme, set()).add(row.customer_id)
    assert found == expected
    assert totals == {t: len(c) for t, c in expected.items()}


async def test_a_rolled_back_savepoint_or_batch_leaves_no_cached_key_or_skipped_write(
        database_url: Callable[[str], str]) -> None:
    a, b = await _copies(database_url, 2)
    try:
        async with a.uow() as uow:
            await a.apply(uow, _item(1, "login", "c1"))
            await uow.commit()
        async with a.uow() as uow:
            # the dead-lettered event created the label keys of "ghost" and "g1" and marked an hour dirty ...
            await a.apply_and_fail(uow, _item(2, "ghost", "g1", at=T0 + timedelta(hours=5)))
            # ... all undone: the next event of the batch must create the keys again and mark the hour itself
            assert await a.apply(uow, _item(3, "ghost", "g1", at=T0 + timedelta(hours=5)))
            await uow.commit()
        async with a.uow() as uow:  # a whole batch rolled back (a transient failure): nothing of it is kept
            assert await a.apply(uow, _item(4, "lost", "l1"))
        async with b.uow() as uow:  # meanwhile another copy creates other keys (SQLite reuses the freed ones)
            assert await b.apply(uow, _item(5, "other", "o1"))
            await uow.commit()
        async with a.uow() as uow:
            assert await a.apply(uow, _item(4, "lost", "l1"))  # the batch again
            assert await a.apply(uow, _item(6, "other", "c1"))  # a key this copy never created: looked up
            await uow.commit()
        async with b.uow() as uow:  # b has cached "other"/"o1"; "login" and "lost" come from the store
            assert await b.apply(uow, _item(7, "login", "o1"))
            assert await b.apply(uow, _item(8, "lost", "c1"))
            await uow.commit()
        await _check_presence_keys(a, {"login": {"c1", "o1"}, "ghost": {"g1"}, "lost": {"l1", "c1"},
                                       "other": {"o1", "c1"}})
        async with a.sessions() as session:
            dirty = set((await session.execute(select(DirtyHour.start))).scalars())
        assert int((T0 + timedelta(hours=5)).timestamp()) in dirty
    finally:
        for copy in (a, b):
            await copy.engine.dispose()


async def test_theme_names_move_forward_only_and_revisions_still_replace(database_url: Callable[[str], str]) -> None:
    (a,) = await _copies(database_url, 1)
    try:
        async with a.uow() as uow:
            await a.apply(uow, _item(1, "login", "c1", at=T0 + timedelta(hours=2)))
            # an older item names the theme differently: the newer naming stays
            await a.apply(uow, classified("2", created_at=T0, received_at=T0,
                                          themes=[{"id": "login", "name": "Old name", "confidence": 0.8}]))
            await uow.commit()
        async with a.uow() as uow:
            # a newer item renames it, and a correction moves item 1 from c1's "login" to "billing"
            await a.apply(uow, classified("3", created_at=T0 + timedelta(hours=3), received_at=T0,
                                          themes=[{"id": "login", "name": "Sign-in", "confidence": 0.8}]))
            await a.apply(uow, _item(1, "billing", "c1", at=T0 + timedelta(hours=2), revision=2))
            await uow.commit()
        async with a.sessions() as session:
            names = {r.theme_id: r.name for (r,) in await session.execute(select(ThemeName))}
        assert names == {"login": "Sign-in", "billing": "Billing"}
        await _check_presence_keys(a, {"login": {"acme"}, "billing": {"c1"}})
    finally:
        await a.engine.dispose()


async def test_an_item_applies_with_few_statements(database_url: Callable[[str], str]) -> None:
    """Once its labels are known, a new item of an hour already marked in the batch takes at most
    eight statements in its savepoint (it took about fifteen before the statements were cut)."""
    (a,) = await _copies(database_url, 1)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    try:
        async with a.uow() as uow:
            await a.apply(uow, _item(1, "login", "c1"))
            await uow.commit()
        event.listen(a.engine.sync_engine, "before_cursor_execute", count)
        async with a.uow() as uow:
            await a.apply(uow, _item(2, "login", "c1"))
            statements.clear()
            assert await a.apply(uow, _item(3, "login", "c1"))
            await uow.commit()
        in_savepoint = [s for s in statements if "SAVEPOINT" not in s.upper()]
        assert len(in_savepoint) <= 8, "\n".join(in_savepoint)
        await _check_presence_keys(a, {"login": {"c1"}})
    finally:
        await a.engine.dispose()


async def test_clusters_keep_their_sizes_and_terms_through_corrections(database_url: Callable[[str], str]) -> None:
    (a,) = await _copies(database_url, 1)
    try:
        async with a.uow() as uow:
            await a.apply(uow, _item(1, "login", "c1", cluster={"id": "k1", "terms": ["a"]}))
            await a.apply(uow, _item(2, "login", "c2", cluster={"id": "k1", "terms": ["a"]}))
            await a.apply(uow, _item(1, "login", "c1", revision=2, cluster={"id": "k1", "terms": ["a", "b"]}))
            await uow.commit()
        async with a.uow() as uow:
            await a.apply(uow, _item(2, "login", "c2", revision=2, cluster={"id": "k2", "terms": ["c"]}))
            await uow.commit()
        async with a.sessions() as session:
            clusters = {r.cluster_id: (r.items, r.terms) for (r,) in await session.execute(select(ClusterRecord))}
        assert clusters == {"k1": (1, ["a", "b"]), "k2": (1, ["c"])}
    finally:
        await a.engine.dispose()


async def _stored(copy: Copy) -> tuple[dict[str, int], int]:
    """(feedback id -> stored revision, the all-time item count of the rollups)."""
    async with copy.sessions() as session:
        items = {r.feedback_id: r.revision for (r,) in await session.execute(select(FeedbackRecord))}
        total = (await session.execute(select(Rollup.count).where(Rollup.bucket == "total", Rollup.dimension == "all")
                                       )).scalar_one_or_none()
    return items, int(total or 0)


async def test_an_erasure_in_the_batch_sees_the_staged_items_and_a_failed_one_puts_them_back(
        database_url: Callable[[str], str]) -> None:
    """Items are staged and written when the batch commits; an erasure later in the batch writes them first.
    When the erasure's savepoint rolls back, the batch is staged again as it was (nothing lost, nothing twice);
    when it commits, a later revision of an erased item is not stored."""
    (a,) = await _copies(database_url, 1)
    first, second, third = _item(1, "login", "c1"), _item(2, "login", "c2"), _item(3, "billing", "c3")
    try:
        async with a.uow() as uow:
            assert await a.apply(uow, first)
            assert await a.apply(uow, second)
            try:
                async with uow.savepoint():  # a privacy event that fails after writing the staged items
                    await write_staged(uow, a.cache)
                    await apply_erasure(uow, ErasureRequest(request_id=uuid.uuid4(), requested_at=T0,
                                                            feedback_ids=[second.feedback_id]))
                    raise Boom
            except Boom:
                pass
            assert not await a.apply(uow, second)  # still staged at revision 1: a duplicate
            assert await a.apply(uow, second.model_copy(update={"revision": 2}))
            await uow.commit()
        assert await _stored(a) == ({str(first.feedback_id): 1, str(second.feedback_id): 2}, 2)

        async with a.uow() as uow:
            assert await a.apply(uow, third)
            async with uow.savepoint():
                await write_staged(uow, a.cache)
                await apply_erasure(uow, ErasureRequest(request_id=uuid.uuid4(), requested_at=T0,
                                                        feedback_ids=[third.feedback_id]))
            assert not await a.apply(uow, third.model_copy(update={"revision": 2}))  # erased: never stored again
            await uow.commit()
        # the erased item's counts stay as anonymous aggregates; the item itself is gone
        assert await _stored(a) == ({str(first.feedback_id): 1, str(second.feedback_id): 2}, 3)
    finally:
        await a.engine.dispose()
