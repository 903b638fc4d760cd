"""The writes of a routed consumer batch, as few statements as possible: each a statement and its parameter rows.

:class:`~notification.service.routing_batch.RoutingBatch` keeps what the events of a batch queue in memory and
writes it when the batch commits (from the session's ``before_commit``, so through the synchronous session) or at
once (:func:`~notification.service.routing.route_event`, through the async one): the same statements either way.
Every write is idempotent — deliveries and digests are inserted ignoring ones already there (deterministic ids),
windows and episode marks are set to absolute values — so writing a batch's state twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from notification.domain.noise import EpisodeMark
from notification.domain.routing import Window
from notification.store.models import Delivery, InsightEpisode, ThrottleWindow

__all__ = ["EpisodeRow", "Write", "batch_writes"]

#: A statement and the parameter rows it is executed with (``executemany`` when there are several).
Write = tuple[Executable, list[dict[str, Any]]]
#: An insight episode mark to store: the mark and the event id it keeps.
EpisodeRow = tuple[EpisodeMark, str]


def _insert_ignoring(dialect: str, table: Table) -> Executable:
    module = postgresql if dialect == "postgresql" else sqlite
    return cast(Executable, module.insert(table).on_conflict_do_nothing())


def batch_writes(dialect: str, deliveries: Sequence[dict[str, Any]], windows: Mapping[tuple[str, int], Window],
                 episodes: Mapping[tuple[str, str], EpisodeRow]) -> list[Write]:
    """The statements that store a batch: its deliveries and digests (one insert), the throttle windows it moved
    (one update, the rows exist: they were locked when read) and its insight episode marks (insert the missing,
    then set all)."""
    writes: list[Write] = []
    if deliveries:
        writes.append((_insert_ignoring(dialect, cast(Table, Delivery.__table__)), list(deliveries)))
    if windows:
        table = cast(Table, ThrottleWindow.__table__)
        writes.append((update(table).where(table.c.rule_id == bindparam("k_rule"),
                                           table.c.channel_index == bindparam("k_index"))
                       .values(window_start=bindparam("v_start"), window_end=bindparam("v_end"),
                               sent=bindparam("v_sent")),
                       [{"k_rule": r, "k_index": i, "v_start": w.start, "v_end": w.end, "v_sent": w.sent}
                        for (r, i), w in sorted(windows.items())]))
    if episodes:
        table = cast(Table, InsightEpisode.__table__)
        rows = [_episode_row(rule_id, key, mark, event_id) for (rule_id, key), (mark, event_id) in
                sorted(episodes.items())]
        writes.append((_insert_ignoring(dialect, table), rows))
        writes.append((update(table).where(table.c.rule_id == bindparam("k_rule"),
                                           table.c.episode_key == bindparam("k_key"))
                       .values(event_id=bindparam("v_event"), window_to=bindparam("v_to"),
                               severity=bindparam("v_severity")),
                       [{"k_rule": r["rule_id"], "k_key": r["episode_key"], "v_event": r["event_id"],
                         "v_to": r["window_to"], "v_severity": r["severity"]} for r in rows]))
    return writes


def _episode_row(rule_id: str, key: str, mark: EpisodeMark, event_id: str) -> dict[str, Any]:
    window_to: datetime = mark.window_to
    return {"rule_id": rule_id, "episode_key": key, "event_id": event_id, "window_to": window_to,
            "severity": mark.severity}
