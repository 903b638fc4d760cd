"""Reads and writes of the rollups, clusters, releases and detector state.

Writers work on a unit of work's session and never commit. :class:`AnalyticsQueries` opens its own
read-only session per call on the runtime's ``read_engine``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Numeric,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from aggregation.domain.episodes import Episode
from aggregation.domain.items import as_utc
from aggregation.domain.rollups import THEME_CUSTOMER_SEP, Measures, RollupKey
from aggregation.store.models import (
    ClusterRecord,
    DirtyHour,
    EpisodeRecord,
    FeedbackRecord,
    FeedbackTheme,
    InsightRecord,
    LabelKey,
    ReleaseRecord,
    Rollup,
    ThemeCustomer,
    ThemeName,
    ThemeTotal,
)

__all__ = [
    "MEASURES",
    "AnalyticsQueries",
    "ClusterRow",
    "DetectionRepository",
    "ReleaseRepository",
    "RollupRepository",
]

MEASURES = ("count", "negative", "sentiment_sum", "urgent", "mrr_sum", "nps_responses", "nps_promoters",
            "nps_detractors", "csat_responses", "csat_satisfied")


def _upsert(session: AsyncSession, table: Any) -> Any:
    return (postgresql.insert(table) if session.get_bind().dialect.name == "postgresql" else sqlite.insert(table))


_STATEMENTS: dict[tuple[str, str], Any] = {}


def _statement(session: AsyncSession, name: str, build: Callable[[Callable[[Any], Any]], Any]) -> Any:
    """The statement ``name``, built once per dialect by ``build(insert)`` (``insert``: the dialect's, with
    ON CONFLICT) and reused, so that its cache key is computed once, not per execution. Parameters go
    with each execution, never into the statement."""
    dialect = session.get_bind().dialect.name
    stmt = _STATEMENTS.get((dialect, name))
    if stmt is None:
        stmt = _STATEMENTS[(dialect, name)] = build(postgresql.insert if dialect == "postgresql" else sqlite.insert)
    return stmt


def _rollup_upsert(insert_: Callable[[Any], Any]) -> Any:
    stmt = insert_(Rollup.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["bucket", "start", "dimension", "key"],
        set_={name: getattr(Rollup.__table__.c, name) + getattr(stmt.excluded, name) for name in MEASURES})


def _presence_upsert(insert_: Callable[[Any], Any]) -> Any:
    table = ThemeCustomer.__table__
    stmt = insert_(table)
    count, mrr_sum = table.c["count"] + stmt.excluded["count"], table.c.mrr_sum + stmt.excluded.mrr_sum
    return stmt.on_conflict_do_update(
        index_elements=["bucket", "start", "theme_key", "customer_key"],
        set_={"count": count, "mrr_sum": mrr_sum, "mrr": case((count > 0, _cents(mrr_sum / count)), else_=0.0)},
    ).returning(table.c.bucket, table.c.start, table.c.theme_key, table.c.customer_key, table.c["count"],
                table.c.mrr_sum)


def _totals_upsert(insert_: Callable[[Any], Any]) -> Any:
    t = ThemeTotal.__table__
    stmt = insert_(t)
    return stmt.on_conflict_do_update(index_elements=["theme_id"], set_={
        "customers": t.c.customers + stmt.excluded.customers,
        "affected_mrr": t.c.affected_mrr + stmt.excluded.affected_mrr})


def _names_upsert(insert_: Callable[[Any], Any]) -> Any:
    stmt = insert_(ThemeName.__table__)
    return stmt.on_conflict_do_update(index_elements=["theme_id"],
                                      set_={"name": stmt.excluded.name, "seen_at": stmt.excluded.seen_at},
                                      where=ThemeName.__table__.c.seen_at <= stmt.excluded.seen_at)


def _dirty_upsert(insert_: Callable[[Any], Any]) -> Any:
    stmt = insert_(DirtyHour.__table__)
    return stmt.on_conflict_do_update(index_elements=["start"], set_={"version": DirtyHour.__table__.c.version + 1})


_CLUSTERS: Table = ClusterRecord.__table__  # type: ignore[assignment]  # (declared as a FromClause)
_CLUSTER_TERMS = update(_CLUSTERS).where(_CLUSTERS.c.cluster_id == bindparam("b_id"))
_CLUSTER_LEAVE = update(_CLUSTERS).where(_CLUSTERS.c.cluster_id == bindparam("b_id")).values(
    items=_CLUSTERS.c["items"] - 1)


def _cluster_join(insert_: Callable[[Any], Any]) -> Any:
    stmt = insert_(_CLUSTERS)
    latest = func.max if insert_ is sqlite.insert else func.greatest
    return stmt.on_conflict_do_update(index_elements=["cluster_id"], set_={
        "items": _CLUSTERS.c["items"] + 1, "terms": stmt.excluded.terms,
        "last_seen": latest(_CLUSTERS.c.last_seen, stmt.excluded.last_seen)})


def _label_insert(insert_: Callable[[Any], Any]) -> Any:
    return insert_(LabelKey.__table__).on_conflict_do_nothing(index_elements=["kind", "value"])


def _label_select(insert_: Callable[[Any], Any]) -> Any:
    table = LabelKey.__table__
    return select(table.c.value, table.c.key).where(table.c.kind == bindparam("kind"),
                                                     table.c.value.in_(bindparam("values", expanding=True)))


def measures_of(row: Any) -> Measures:
    """Measures of an ORM ``Rollup`` or of a result row labelled with the measure names."""
    values = row._mapping if hasattr(row, "_mapping") else {name: getattr(row, name) for name in MEASURES}
    return Measures(**{name: values[name] or 0 for name in MEASURES})


def _cents(value: Any) -> Any:
    """``round(value, 2)`` in SQL; PostgreSQL rounds to places only a numeric, so cast first."""
    return func.round(cast(value, Numeric), 2)


def _mean_mrr(count: int, mrr_sum: float) -> float:
    """A customer's mrr in a presence row: the mean over its items, to the cent; 0 once it has no items."""
    return round(mrr_sum / count, 2) if count > 0 else 0.0


_COMMITTED_CAP = 200_000
"""Entries kept per engine in :data:`_COMMITTED`; past it the cache starts over (it is only a shortcut)."""

_COMMITTED: weakref.WeakKeyDictionary[Engine, dict[Hashable, Any]] = weakref.WeakKeyDictionary()
"""Per database (engine): facts a committed transaction of this process established that stay true for
good, whatever other copies do: ``("label", kind, value) -> key`` (label keys are never changed or
deleted) and ``("named", theme_id) -> (seen_at, name)``, a lower bound of the stored naming (it only
moves forward)."""


class TransactionMemo:
    """What the open transaction of one session has already written, so that later items of the same
    unit of work can skip a statement that would change nothing.

    Each fact is tagged with the innermost transaction (savepoint) that was open when it was learned.
    When a savepoint or the transaction rolls back, the facts it (or a savepoint inside it) learned are
    dropped: a dead-lettered event's writes are not remembered. When the outermost transaction commits,
    the lasting facts (those whose kind is in :attr:`LASTING`) move to the process-wide per-engine cache
    and the memo empties. Get it with :meth:`of`; it lives in ``session.info``.
    """

    LASTING = ("label", "named")

    def __init__(self, session: Session, engine: Engine) -> None:
        self._session = session
        self._engine = engine
        self._facts: dict[Hashable, tuple[SessionTransaction | None, Any]] = {}
        event.listen(session, "after_soft_rollback", self._rolled_back)
        event.listen(session, "after_commit", self._committed)

    @classmethod
    def of(cls, session: AsyncSession) -> TransactionMemo:
        sync = session.sync_session
        memo = sync.info.get("aggregation.memo")
        if memo is None:
            memo = sync.info["aggregation.memo"] = cls(sync, session.get_bind().engine)
        return memo

    def get(self, key: Hashable) -> Any | None:
        """The fact under ``key``, from this transaction or else from a committed one; None if unknown."""
        fact = self._facts.get(key)
        if fact is not None:
            return fact[1]
        return _COMMITTED.get(self._engine, {}).get(key)

    def put(self, key: Hashable, value: Any) -> None:
        self._facts[key] = (self._session.get_nested_transaction() or self._session.get_transaction(), value)

    def _rolled_back(self, session: Session, previous: SessionTransaction) -> None:
        def undone(txn: SessionTransaction | None) -> bool:
            while txn is not None:
                if txn is previous:
                    return True
                txn = txn.parent
            return False

        self._facts = {k: f for k, f in self._facts.items() if not undone(f[0])}

    def _committed(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: its facts stand or fall with the enclosing transaction
        lasting = {k: f[1] for k, f in self._facts.items() if isinstance(k, tuple) and k[0] in self.LASTING}
        self._facts = {}
        if lasting:
            cache = _COMMITTED.setdefault(self._engine, {})
            if len(cache) + len(lasting) > _COMMITTED_CAP:
                cache.clear()
            cache.update(lasting)


class RollupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.memo = TransactionMemo.of(session)

    async def add(self, deltas: Mapping[RollupKey, Measures]) -> None:
        """Add each delta to its cell (creating it at zero first); cells are never deleted, zeros stay.

        ``theme_customer`` deltas go to the presence table instead (:meth:`_add_presence`)."""
        presence = {k: m for k, m in deltas.items() if k.dimension == "theme_customer"}
        if presence:
            await self._add_presence(presence)
        rows = [{"bucket": k.bucket, "start": k.start, "dimension": k.dimension, "key": k.key, **m.values()}
                for k, m in deltas.items() if k.dimension != "theme_customer"]
        if not rows:
            return
        await self.session.execute(_statement(self.session, "rollup", _rollup_upsert), rows)

    async def label_keys(self, kind: str, values: Iterable[str]) -> dict[str, int]:
        """The integer key of each value of ``kind`` (theme | customer), creating the missing ones."""
        found: dict[str, int] = {}
        wanted = []
        for value in sorted(set(values)):
            key = self.memo.get(("label", kind, value))
            if key is None:
                wanted.append(value)
            else:
                found[value] = key
        if not wanted:
            return found
        lookup = _statement(self.session, "label_select", _label_select)
        looked_up = {r.value: r.key for r in await self.session.execute(lookup, {"kind": kind, "values": wanted})}
        missing = [v for v in wanted if v not in looked_up]
        if missing:
            await self.session.execute(_statement(self.session, "label_insert", _label_insert),
                                       [{"kind": kind, "value": v} for v in missing])
            looked_up.update({r.value: r.key for r in await self.session.execute(
                lookup, {"kind": kind, "values": missing})})
        for value, key in looked_up.items():
            self.memo.put(("label", kind, value), key)
        return found | looked_up

    async def _add_presence(self, deltas: Mapping[RollupKey, Measures]) -> None:
        """Add (theme, customer) deltas to their presence rows, and the change of the theme's distinct
        customers and their mrr to ``theme_totals`` when the delta is to the all-time row.

        Each row is updated atomically with RETURNING, so the row's value before this delta is known
        exactly (new minus delta) even with concurrent writers on PostgreSQL."""
        pairs = {k: k.key.partition(THEME_CUSTOMER_SEP)[::2] for k in deltas}
        themes = await self.label_keys("theme", (t for t, _ in pairs.values()))
        customers = await self.label_keys("customer", (c for _, c in pairs.values()))
        ordered = sorted(deltas.items(), key=lambda kv: (kv[0].bucket, kv[0].start, kv[0].key))
        rows = [{"bucket": k.bucket, "start": k.start, "theme_key": themes[pairs[k][0]],
                 "customer_key": customers[pairs[k][1]], "customer_id": pairs[k][1], "count": m.count,
                 "mrr_sum": m.mrr_sum, "mrr": _mean_mrr(m.count, m.mrr_sum)} for k, m in ordered]
        # One statement for all the rows (executemany with RETURNING is sent as one multi-row INSERT);
        # the rows come back in no promised order, so each carries its key.
        stmt = _statement(self.session, "presence", _presence_upsert)
        after = {tuple(r[:4]): r[4:] for r in await self.session.execute(stmt, rows)}
        totals: dict[str, list[float]] = {}
        for (k, m), row in zip(ordered, rows, strict=True):
            if k.bucket != "total":
                continue
            theme = pairs[k][0]
            new = after[(row["bucket"], row["start"], row["theme_key"], row["customer_key"])]
            old_count, old_sum = new[0] - m.count, new[1] - m.mrr_sum
            total = totals.setdefault(theme, [0, 0.0])
            total[0] += int(new[0] > 0) - int(old_count > 0)
            total[1] += _mean_mrr(new[0], new[1]) - _mean_mrr(old_count, old_sum)
        rows = [{"theme_id": t, "customers": int(c), "affected_mrr": mrr} for t, (c, mrr) in sorted(totals.items())
                if c or mrr]
        if rows:
            await self.session.execute(_statement(self.session, "totals", _totals_upsert), rows)

    async def name_themes(self, names: Iterable[tuple[str, str]], seen_at: datetime) -> None:
        """Record each (theme id, name) unless a newer item already named the theme."""
        seen_at = as_utc(seen_at)
        rows = []
        for theme_id, name in dict(names).items():
            # The stored (seen_at, name) only moves forward: an older naming, or the same one again, is a no-op.
            known = self.memo.get(("named", theme_id))
            if known is not None and (seen_at < known[0] or (seen_at == known[0] and name == known[1])):
                continue
            rows.append({"theme_id": theme_id, "name": name, "seen_at": seen_at})
        if not rows:
            return
        await self.session.execute(_statement(self.session, "names", _names_upsert), rows)
        for row in rows:
            self.memo.put(("named", row["theme_id"]), (seen_at, row["name"]))

    async def mark_dirty(self, hours: Iterable[int]) -> None:
        """Mark the hours dirty for the detectors (a new version of each); an hour already marked in this
        transaction is not marked again (the detectors cannot have read it in between)."""
        rows = [{"start": h, "version": 1} for h in sorted(set(hours)) if self.memo.get(("dirty", h)) is None]
        if not rows:
            return
        for row in rows:
            self.memo.put(("dirty", row["start"]), True)
        await self.session.execute(_statement(self.session, "dirty", _dirty_upsert), rows)

    async def move_cluster(self, old: str | None, new: str | None, terms: list[str], seen_at: datetime) -> None:
        """The item left cluster ``old`` and joined ``new`` (either may be None)."""
        if old == new:
            if new is not None:
                await self.session.execute(_CLUSTER_TERMS, {"b_id": new, "terms": terms})
            return
        if old is not None:
            await self.session.execute(_CLUSTER_LEAVE, {"b_id": old})
        if new is not None:
            await self.session.execute(_statement(self.session, "cluster_join", _cluster_join), {
                "cluster_id": new, "terms": terms, "items": 1, "last_seen": as_utc(seen_at), "insight_id": None})


@dataclass(frozen=True)
class ClusterRow:
    cluster_id: str
    terms: list[str]
    items: int


class DetectionRepository:
    """What the detectors read and write inside their unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def dirty_hours(self, limit: int = 5000) -> dict[int, int]:
        """Dirty hours, oldest first. On PostgreSQL they are locked, skipping those a consumer is marking right
        now (judged next run): the detector never waits on a consumer, so the two do not deadlock."""
        rows = await self.session.execute(select(DirtyHour.start, DirtyHour.version).order_by(DirtyHour.start)
                                          .limit(limit).with_for_update(skip_locked=True))
        return {r.start: r.version for r in rows}

    async def clear_dirty(self, judged: Mapping[int, int]) -> None:
        """Forget the judged hours, except those that changed again since they were read."""
        for start, version in judged.items():
            await self.session.execute(delete(DirtyHour).where(DirtyHour.start == start,
                                                               DirtyHour.version == version))

    async def first_hour(self) -> int | None:
        result = await self.session.execute(select(func.min(Rollup.start)).where(
            Rollup.bucket == "hour", Rollup.dimension == "all", Rollup.count > 0))
        return result.scalar_one_or_none()

    async def hourly(self, dimensions: Iterable[str], begin: int,
                     end: int) -> dict[tuple[str, str], dict[int, Measures]]:
        """(dimension, key) → {hour start → measures} for hours in [begin, end)."""
        rows = await self.session.execute(select(Rollup).where(
            Rollup.bucket == "hour", Rollup.dimension.in_(list(dimensions)), Rollup.start >= begin,
            Rollup.start < end))
        out: dict[tuple[str, str], dict[int, Measures]] = {}
        for (row,) in rows:
            out.setdefault((row.dimension, row.key), {})[row.start] = measures_of(row)
        return out

    async def episodes(self, detector: str, subject: str) -> list[Episode]:
        rows = await self.session.execute(select(EpisodeRecord).where(EpisodeRecord.detector == detector,
                                                                      EpisodeRecord.subject == subject))
        return [Episode(r.detector, r.subject, r.first, r.last, r.insight_id) for (r,) in rows]

    async def open_episode(self, episode: Episode) -> None:
        await self.session.execute(insert(EpisodeRecord).values(
            detector=episode.detector, subject=episode.subject, first=episode.first, last=episode.last,
            insight_id=episode.insight_id))

    async def extend_episode(self, episode: Episode, at: int) -> None:
        await self.session.execute(update(EpisodeRecord).where(
            EpisodeRecord.detector == episode.detector, EpisodeRecord.subject == episode.subject,
            EpisodeRecord.first == episode.first).values(last=max(episode.last, at)))

    async def evidence(self, dimension: str, key: str, begin: datetime, end: datetime, limit: int = 50) -> list[str]:
        """Ids of the items of (dimension, key) created in [begin, end), oldest first."""
        f = FeedbackRecord
        stmt = select(f.feedback_id).where(f.created_at >= begin, f.created_at < end)
        if dimension == "theme":
            stmt = stmt.where(f.feedback_id.in_(select(FeedbackTheme.feedback_id)
                                                .where(FeedbackTheme.theme_id == key)))
        elif dimension == "product_area":
            stmt = stmt.where(f.product_area == key)
        elif dimension == "cluster":
            stmt = stmt.where(f.cluster_id == key)
        rows = await self.session.execute(stmt.order_by(f.created_at, f.feedback_id).limit(limit))
        return [r[0] for r in rows]

    async def first_created(self, ids: list[str]) -> datetime | None:
        if not ids:
            return None
        result = await self.session.execute(select(func.min(FeedbackRecord.created_at))
                                            .where(FeedbackRecord.feedback_id.in_(ids)))
        value = result.scalar_one_or_none()
        return as_utc(value) if value is not None else None

    async def theme_names(self, ids: Iterable[str]) -> dict[str, str]:
        rows = await self.session.execute(select(ThemeName.theme_id, ThemeName.name)
                                          .where(ThemeName.theme_id.in_(list(ids))))
        return {r.theme_id: r.name for r in rows}

    async def release_before(self, moment: datetime, lookback: float) -> dict[str, Any] | None:
        """The newest release at or before ``moment`` and at most ``lookback`` seconds before it."""
        from datetime import timedelta
        rows = await self.session.execute(select(ReleaseRecord.data).where(
            ReleaseRecord.released_at <= moment, ReleaseRecord.released_at >= moment - timedelta(seconds=lookback))
            .order_by(ReleaseRecord.released_at.desc()).limit(1))
        return rows.scalar_one_or_none()

    async def unflagged_clusters(self, min_items: int) -> list[ClusterRow]:
        """Clusters with no insight yet and at least ``min_items`` items; one judged a duplicate of a theme
        only once it has doubled since (its verdict is not paid for on every run)."""
        c = ClusterRecord
        rows = await self.session.execute(select(c).where(
            c.insight_id.is_(None), c.items >= min_items,
            or_(c.judged_items.is_(None), c.items >= 2 * c.judged_items)))
        return [ClusterRow(r.cluster_id, list(r.terms), r.items) for (r,) in rows]

    async def cluster_themes(self, cluster_id: str, since: datetime) -> tuple[int, dict[str, int]]:
        """Of the cluster's items created since ``since``: how many carry a theme, and how many each theme."""
        f, t = FeedbackRecord, FeedbackTheme
        members = and_(f.cluster_id == cluster_id, f.created_at >= since)
        themed = int((await self.session.execute(select(func.count(func.distinct(t.feedback_id))).select_from(t)
                                                 .join(f, f.feedback_id == t.feedback_id).where(members)))
                     .scalar_one())
        rows = await self.session.execute(select(t.theme_id, func.count()).join(f, f.feedback_id == t.feedback_id)
                                          .where(members).group_by(t.theme_id))
        return themed, {r[0]: int(r[1]) for r in rows}

    async def term_use(self, cluster_id: str, words: Iterable[str], since: datetime,
                       sample: int = 1000) -> tuple[int, dict[str, int]]:
        """Of the latest ``sample`` items created since ``since``, outside the cluster, whose text holds every
        one of ``words`` (as substrings, any case): how many there are, and their themes."""
        f = FeedbackRecord
        stmt = select(f.feedback_id).where(f.created_at >= since,
                                           or_(f.cluster_id.is_(None), f.cluster_id != cluster_id))
        for word in words:
            stmt = stmt.where(func.lower(f.text).contains(word.lower(), autoescape=True))
        found = stmt.order_by(f.created_at.desc()).limit(sample).subquery()
        items = int((await self.session.execute(select(func.count()).select_from(found))).scalar_one())
        if not items:
            return 0, {}
        rows = await self.session.execute(select(FeedbackTheme.theme_id, func.count())
                                          .where(FeedbackTheme.feedback_id.in_(select(found.c.feedback_id)))
                                          .group_by(FeedbackTheme.theme_id))
        return items, {r[0]: int(r[1]) for r in rows}

    async def all_theme_names(self) -> dict[str, str]:
        rows = await self.session.execute(select(ThemeName.theme_id, ThemeName.name))
        return {r.theme_id: r.name for r in rows}

    async def mark_duplicate(self, cluster_id: str, theme_id: str, items: int) -> None:
        await self.session.execute(update(ClusterRecord).where(ClusterRecord.cluster_id == cluster_id)
                                   .values(duplicate_of=theme_id, judged_items=items))

    async def cluster_items_since(self, cluster_id: str, since: datetime) -> int:
        result = await self.session.execute(select(func.count()).select_from(FeedbackRecord).where(
            FeedbackRecord.cluster_id == cluster_id, FeedbackRecord.created_at >= since))
        return int(result.scalar_one())

    async def flag_cluster(self, cluster_id: str, insight_id: str) -> None:
        """The cluster is an emerging theme: its insight, and no longer a duplicate of anything."""
        await self.session.execute(update(ClusterRecord).where(ClusterRecord.cluster_id == cluster_id)
                                   .values(insight_id=insight_id, duplicate_of=None))


class ReleaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, release_id: str, version: str, kind: str, service: str | None, released_at: datetime,
                     data: dict[str, Any]) -> None:
        values = {"release_id": release_id, "version": version, "kind": kind, "service": service,
                  "released_at": as_utc(released_at), "data": data}
        stmt = _upsert(self.session, ReleaseRecord.__table__).values(values)
        stmt = stmt.on_conflict_do_update(index_elements=["release_id"],
                                          set_={k: v for k, v in values.items() if k != "release_id"})
        await self.session.execute(stmt)


class AnalyticsQueries:
    """The dashboard's reads over the rollups; each method is one read-only transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def cells(self, bucket: str, dimension: str, begin: int, end: int,
                    key: str | None = None, key_prefix: str | None = None) -> list[tuple[str, int, Measures]]:
        """(key, start, measures) of every cell of ``dimension`` in ``bucket`` with begin ≤ start < end."""
        stmt = select(Rollup).where(Rollup.bucket == bucket, Rollup.dimension == dimension, Rollup.start >= begin,
                                    Rollup.start < end, Rollup.count > 0)
        if key is not None:
            stmt = stmt.where(Rollup.key == key)
        if key_prefix is not None:
            stmt = stmt.where(Rollup.key.startswith(key_prefix, autoescape=True))
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(stmt)
            return [(r.key, r.start, measures_of(r)) for (r,) in rows]

    async def sums(self, bucket: str, dimension: str, begin: int, end: int,
                   key: str | None = None) -> dict[str, Measures]:
        """Per key of ``dimension``, the measures summed over the cells in [begin, end), in SQL."""
        columns = [func.sum(getattr(Rollup, name)).label(name) for name in MEASURES]
        stmt = (select(Rollup.key, *columns).where(Rollup.bucket == bucket, Rollup.dimension == dimension,
                                                   Rollup.start >= begin, Rollup.start < end)
                .group_by(Rollup.key))
        if key is not None:
            stmt = stmt.where(Rollup.key == key)
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(stmt)
            sums = {r.key: measures_of(r) for r in rows}
            return {k: m for k, m in sums.items() if m.count > 0}

    async def theme_customers(self, day_begin: int | None, day_end: int | None) -> dict[str, tuple[int, float]]:
        """Per theme, (distinct customers, the sum of their mean mrr) over the day rows in [day_begin, day_end),
        or all time (from ``theme_totals``) when both are None. Aggregated in SQL."""
        async with AsyncSession(self.engine) as session:
            if day_begin is None or day_end is None:
                rows = await session.execute(select(ThemeTotal.theme_id, ThemeTotal.customers,
                                                    ThemeTotal.affected_mrr).where(ThemeTotal.customers > 0))
                return {r[0]: (int(r[1]), float(r[2])) for r in rows}
            tc = ThemeCustomer.__table__
            count, mrr_sum = func.sum(tc.c["count"]), func.sum(tc.c.mrr_sum)
            pairs = (select(tc.c.theme_key, count.label("n"), mrr_sum.label("m"))
                     .where(tc.c.bucket == "day", tc.c.start >= day_begin, tc.c.start < day_end)
                     .group_by(tc.c.theme_key, tc.c.customer_key).having(count > 0).subquery())
            per_theme = (select(pairs.c.theme_key, func.count().label("customers"),
                                func.sum(_cents(pairs.c.m / pairs.c.n)).label("mrr"))
                         .group_by(pairs.c.theme_key).subquery())
            rows = await session.execute(select(LabelKey.value, per_theme.c.customers, per_theme.c.mrr)
                                         .join(per_theme, per_theme.c.theme_key == LabelKey.key))
            return {r[0]: (int(r[1]), float(r[2] or 0.0)) for r in rows}

    async def top_customers(self, theme_ids: Iterable[str], day_begin: int | None, day_end: int | None,
                            n: int = 5) -> dict[str, list[tuple[str, int, float]]]:
        """Per theme, its ``n`` customers of highest mean mrr (then most items, then id) as (id, items, mrr),
        over the day rows in [day_begin, day_end) or all time when both are None."""
        tc = ThemeCustomer.__table__
        out: dict[str, list[tuple[str, int, float]]] = {}
        async with AsyncSession(self.engine) as session:
            keys = {r.key: r.value for r in await session.execute(
                select(LabelKey.value, LabelKey.key).where(LabelKey.kind == "theme",
                                                           LabelKey.value.in_(list(theme_ids))))}
            parts = []
            for key in keys:  # one LIMIT-n index walk per theme, all in one statement
                if day_begin is None or day_end is None:
                    # The n-th best (mrr, count) from the index, walked backwards; then only the rows at or
                    # above it, so that ties are ordered by customer id without sorting the whole theme.
                    theme = and_(tc.c.bucket == "total", tc.c.start == 0, tc.c.theme_key == key)
                    mine = and_(theme, tc.c["count"] > 0)
                    nth = select(tc.c.mrr, tc.c["count"]).where(mine).order_by(
                        tc.c.mrr.desc(), tc.c["count"].desc()).offset(n - 1).limit(1)
                    nth_mrr = func.coalesce(nth.with_only_columns(tc.c.mrr).scalar_subquery(), -1.0)
                    nth_count = func.coalesce(nth.with_only_columns(tc.c["count"]).scalar_subquery(), 1)
                    columns = (literal(key).label("theme"), tc.c.customer_id, tc.c["count"], tc.c.mrr_sum)
                    # (`count + 0`: a filter, not an index range, so the mrr range below drives the walk)
                    above = union_all(select(*columns).where(theme, tc.c["count"] + 0 > 0, tc.c.mrr > nth_mrr),
                                      select(*columns).where(theme, tc.c.mrr == nth_mrr,  # ties: an index range
                                                             tc.c["count"] >= nth_count))
                    stmt = select(above.subquery())
                else:
                    count, mrr_sum = func.sum(tc.c["count"]), func.sum(tc.c.mrr_sum)
                    stmt = (select(literal(key).label("theme"), tc.c.customer_id, count, mrr_sum)
                            .where(tc.c.bucket == "day", tc.c.theme_key == key, tc.c.start >= day_begin,
                                   tc.c.start < day_end)
                            .group_by(tc.c.customer_key, tc.c.customer_id).having(count > 0)
                            .order_by(_cents(mrr_sum / count).desc(), count.desc(), tc.c.customer_id)
                            .limit(n))
                parts.append(select(stmt.subquery()))
            rows = (await session.execute(union_all(*parts))).all() if parts else []
        for theme_key, value, count_, mrr_total in rows:
            out.setdefault(keys[theme_key], []).append((value, int(count_), round(float(mrr_total) / int(count_), 2)))
        return {t: sorted(c, key=lambda c: (-c[2], -c[1], c[0]))[:n] for t, c in out.items()}

    async def theme_names(self) -> dict[str, str]:
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(select(ThemeName.theme_id, ThemeName.name))
            return {r.theme_id: r.name for r in rows}

    async def classify_latency(self, begin: datetime, end: datetime) -> tuple[float | None, int]:
        """The median created → classified seconds of the items created in [begin, end) and received live,
        and how many back-dated imports of the window that leaves out (``domain/items.py``)."""
        f = FeedbackRecord
        timed = and_(f.created_at >= begin, f.created_at < end, f.classify_seconds.is_not(None))
        live = and_(timed, f.backdated.is_(False))
        async with AsyncSession(self.engine) as session:
            excluded = int((await session.execute(select(func.count()).select_from(f)
                                                  .where(timed, f.backdated.is_(True)))).scalar_one())
            n = int((await session.execute(select(func.count()).select_from(f).where(live))).scalar_one())
            if n == 0:
                return None, excluded
            values: list[float] = [float(v) for (v,) in await session.execute(
                select(f.classify_seconds).where(live).order_by(f.classify_seconds)
                .offset((n - 1) // 2).limit(2 - n % 2)) if v is not None]
        return sum(values) / len(values), excluded

    async def releases(self, begin: datetime | None, end: datetime | None, limit: int = 200) -> list[dict[str, Any]]:
        stmt = select(ReleaseRecord.data)
        if begin is not None:
            stmt = stmt.where(ReleaseRecord.released_at >= begin)
        if end is not None:
            stmt = stmt.where(ReleaseRecord.released_at < end)
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(stmt.order_by(ReleaseRecord.released_at.desc()).limit(limit))
            return [r[0] for r in rows]

    async def insight_acks(self, ids: list[str]) -> dict[str, tuple[datetime, str | None]]:
        if not ids:
            return {}
        async with AsyncSession(self.engine) as session:
            rows = await session.execute(select(InsightRecord.insight_id, InsightRecord.acknowledged_at,
                                                InsightRecord.acknowledged_by)
                                         .where(InsightRecord.insight_id.in_(ids),
                                                InsightRecord.acknowledged_at.is_not(None)))
            return {r.insight_id: (as_utc(r.acknowledged_at), r.acknowledged_by) for r in rows}
