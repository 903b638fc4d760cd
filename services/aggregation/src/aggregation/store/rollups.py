"""The consumer's writes of the rollups, the theme-customer presence rows, theme names, dirty hours and
cluster sizes (:class:`RollupRepository`), a batch's merged changes at a time. It works on the synchronous side
of a unit of work's session (it runs when the batch is written: ``aggregation.store.staging``) and never commits.

Its statements come from the service's :class:`~aggregation.store.memo.StoreCache`, and what the open
transaction already wrote from the session's :class:`~aggregation.store.memo.TransactionMemo`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from aggregation.domain.batch import ClusterChange
from aggregation.domain.items import as_utc
from aggregation.domain.rollups import THEME_CUSTOMER_SEP, Measures, RollupKey
from aggregation.store._sql import MEASURES, InsertOf, cents
from aggregation.store.memo import StoreCache, TransactionMemo
from aggregation.store.models import ClusterRecord, DirtyHour, LabelKey, Rollup, ThemeCustomer, ThemeName, ThemeTotal

__all__ = ["MEASURES", "RollupRepository"]


def _rollup_upsert(insert_: InsertOf) -> Any:
    stmt = insert_(Rollup.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["bucket", "start", "dimension", "key"],
        set_={name: getattr(Rollup.__table__.c, name) + getattr(stmt.excluded, name) for name in MEASURES})


def _presence_upsert(insert_: InsertOf) -> Any:
    table = ThemeCustomer.__table__
    stmt = insert_(table)
    count, mrr_sum = table.c["count"] + stmt.excluded["count"], table.c.mrr_sum + stmt.excluded.mrr_sum
    return stmt.on_conflict_do_update(
        index_elements=["bucket", "start", "theme_key", "customer_key"],
        set_={"count": count, "mrr_sum": mrr_sum, "mrr": case((count > 0, cents(mrr_sum / count)), else_=0.0)},
    ).returning(table.c.bucket, table.c.start, table.c.theme_key, table.c.customer_key, table.c["count"],
                table.c.mrr_sum)


def _totals_upsert(insert_: InsertOf) -> Any:
    t = ThemeTotal.__table__
    stmt = insert_(t)
    return stmt.on_conflict_do_update(index_elements=["theme_id"], set_={
        "customers": t.c.customers + stmt.excluded.customers,
        "affected_mrr": t.c.affected_mrr + stmt.excluded.affected_mrr})


def _names_upsert(insert_: InsertOf) -> Any:
    stmt = insert_(ThemeName.__table__)
    return stmt.on_conflict_do_update(index_elements=["theme_id"],
                                      set_={"name": stmt.excluded.name, "seen_at": stmt.excluded.seen_at},
                                      where=ThemeName.__table__.c.seen_at <= stmt.excluded.seen_at)


def _dirty_upsert(insert_: InsertOf) -> Any:
    stmt = insert_(DirtyHour.__table__)
    return stmt.on_conflict_do_update(index_elements=["start"], set_={"version": DirtyHour.__table__.c.version + 1})


_CLUSTERS: Table = ClusterRecord.__table__  # type: ignore[assignment]  # (declared as a FromClause)
_CLUSTER_SIZE = update(_CLUSTERS).where(_CLUSTERS.c.cluster_id == bindparam("b_id")).values(
    items=_CLUSTERS.c["items"] + bindparam("b_items"))
_CLUSTER_SIZE_TERMS = update(_CLUSTERS).where(_CLUSTERS.c.cluster_id == bindparam("b_id")).values(
    items=_CLUSTERS.c["items"] + bindparam("b_items"), terms=bindparam("b_terms", type_=_CLUSTERS.c.terms.type))


def _cluster_join(insert_: InsertOf) -> Any:
    """Items joined (a new cluster starts with them): size + the net change, the latest terms and last_seen."""
    stmt = insert_(_CLUSTERS)
    latest = func.max if insert_ is sqlite.insert else func.greatest
    return stmt.on_conflict_do_update(index_elements=["cluster_id"], set_={
        "items": _CLUSTERS.c["items"] + stmt.excluded["items"], "terms": stmt.excluded.terms,
        "last_seen": latest(_CLUSTERS.c.last_seen, stmt.excluded.last_seen)})


def _label_insert(insert_: InsertOf) -> Any:
    return insert_(LabelKey.__table__).on_conflict_do_nothing(index_elements=["kind", "value"])


def _label_select(insert_: InsertOf) -> Any:
    table = LabelKey.__table__
    return select(table.c.value, table.c.key).where(table.c.kind == bindparam("kind"),
                                                     table.c.value.in_(bindparam("values", expanding=True)))


def _cell_order(cell: tuple[RollupKey, Measures]) -> tuple[str, int, str, str]:
    """Cells in key order: two copies on one PostgreSQL store lock them in the same order (fewer deadlocks)."""
    key = cell[0]
    return key.bucket, key.start, key.dimension, key.key



def _mean_mrr(count: int, mrr_sum: float) -> float:
    """A customer's mrr in a presence row: the mean over its items, to the cent; 0 once it has no items."""
    return round(mrr_sum / count, 2) if count > 0 else 0.0


class RollupRepository:
    """Writes of the apply path; ``cache`` is the service's (a fresh one is correct, only slower)."""

    def __init__(self, session: Session, cache: StoreCache | None = None) -> None:
        self.session = session
        self.memo = TransactionMemo.of(session, cache if cache is not None else StoreCache())
        self.cache = self.memo.cache

    def add(self, deltas: Mapping[RollupKey, Measures]) -> None:
        """Add each delta to its cell (creating it at zero first); cells are never deleted, zeros stay.

        ``theme_customer`` deltas go to the presence table instead (:meth:`_add_presence`)."""
        presence = {k: m for k, m in deltas.items() if k.dimension == "theme_customer"}
        if presence:
            self._add_presence(presence)
        rows = [{"bucket": k.bucket, "start": k.start, "dimension": k.dimension, "key": k.key, **m.values()}
                for k, m in sorted(deltas.items(), key=_cell_order) if k.dimension != "theme_customer"]
        if not rows:
            return
        self.session.execute(self.cache.statement(self.session, "rollup", _rollup_upsert), rows)

    def label_keys(self, kind: str, values: Iterable[str]) -> dict[str, int]:
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
        lookup = self.cache.statement(self.session, "label_select", _label_select)
        looked_up = {r.value: r.key for r in self.session.execute(lookup, {"kind": kind, "values": wanted})}
        missing = [v for v in wanted if v not in looked_up]
        if missing:
            self.session.execute(self.cache.statement(self.session, "label_insert", _label_insert),
                                       [{"kind": kind, "value": v} for v in missing])
            looked_up.update({r.value: r.key for r in self.session.execute(
                lookup, {"kind": kind, "values": missing})})
        for value, key in looked_up.items():
            self.memo.put(("label", kind, value), key)
        return found | looked_up

    def _add_presence(self, deltas: Mapping[RollupKey, Measures]) -> None:
        """Add (theme, customer) deltas to their presence rows, and the change of the theme's distinct
        customers and their mrr to ``theme_totals`` when the delta is to the all-time row.

        Each row is updated atomically with RETURNING, so the row's value before this delta is known
        exactly (new minus delta) even with concurrent writers on PostgreSQL."""
        pairs = {k: k.key.partition(THEME_CUSTOMER_SEP)[::2] for k in deltas}
        themes = self.label_keys("theme", (t for t, _ in pairs.values()))
        customers = self.label_keys("customer", (c for _, c in pairs.values()))
        ordered = sorted(deltas.items(), key=lambda kv: (kv[0].bucket, kv[0].start, kv[0].key))
        rows = [{"bucket": k.bucket, "start": k.start, "theme_key": themes[pairs[k][0]],
                 "customer_key": customers[pairs[k][1]], "customer_id": pairs[k][1], "count": m.count,
                 "mrr_sum": m.mrr_sum, "mrr": _mean_mrr(m.count, m.mrr_sum)} for k, m in ordered]
        # One statement for all the rows (executemany with RETURNING is sent as one multi-row INSERT);
        # the rows come back in no promised order, so each carries its key.
        stmt = self.cache.statement(self.session, "presence", _presence_upsert)
        after = {tuple(r[:4]): r[4:] for r in self.session.execute(stmt, rows)}
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
            self.session.execute(self.cache.statement(self.session, "totals", _totals_upsert), rows)

    def name_themes(self, names: Mapping[str, tuple[datetime, str]]) -> None:
        """Record each theme's (seen_at, name) unless a newer item already named the theme."""
        rows = []
        for theme_id, (seen, name) in sorted(names.items()):
            seen_at = as_utc(seen)
            # The stored (seen_at, name) only moves forward: an older naming, or the same one again, is a no-op.
            known = self.memo.get(("named", theme_id))
            if known is not None and (seen_at < known[0] or (seen_at == known[0] and name == known[1])):
                continue
            rows.append({"theme_id": theme_id, "name": name, "seen_at": seen_at})
        if not rows:
            return
        self.session.execute(self.cache.statement(self.session, "names", _names_upsert), rows)
        for row in rows:
            self.memo.put(("named", row["theme_id"]), (row["seen_at"], row["name"]))

    def mark_dirty(self, hours: Iterable[int]) -> None:
        """Mark the hours dirty for the detectors (a new version of each); an hour already marked in this
        transaction is not marked again (the detectors cannot have read it in between)."""
        rows = [{"start": h, "version": 1} for h in sorted(set(hours)) if self.memo.get(("dirty", h)) is None]
        if not rows:
            return
        for row in rows:
            self.memo.put(("dirty", row["start"]), True)
        self.session.execute(self.cache.statement(self.session, "dirty", _dirty_upsert), rows)

    def change_clusters(self, changes: Mapping[str, ClusterChange]) -> None:
        """Apply each cluster's net change: an upsert where items joined, else an update of its size (and terms)."""
        joined, sized, termed = [], [], []
        for cluster_id, change in sorted(changes.items()):
            if change.last_seen is not None:
                joined.append({"cluster_id": cluster_id, "terms": change.terms or [], "items": change.items,
                               "last_seen": as_utc(change.last_seen), "insight_id": None})
            elif change.terms is not None:
                termed.append({"b_id": cluster_id, "b_items": change.items, "b_terms": change.terms})
            elif change.items:
                sized.append({"b_id": cluster_id, "b_items": change.items})
        if joined:
            self.session.execute(self.cache.statement(self.session, "cluster_join", _cluster_join), joined)
        if termed:
            self.session.execute(_CLUSTER_SIZE_TERMS, termed)
        if sized:
            self.session.execute(_CLUSTER_SIZE, sized)
