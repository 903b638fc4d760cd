"""What a consumer batch of applied items writes, merged: one delta per rollup cell, one naming per theme, one
change per cluster, the latest revision of each item. Pure.

Within a batch each item is known by what the store held before the batch (``before``, None for a new item)
and the revisions applied since, in the order they were applied (:class:`Staged`). Writing the net effect is
the same as writing each revision in turn: every rollup measure is a sum, so the revisions in between cancel
out and the item moves from its stored labels to its latest ones; a theme keeps the naming of its newest item
(on a tie the one applied last); a cluster's size changes by the items that joined less those that left, and its
terms are those applied last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aggregation.domain.items import as_utc
from aggregation.domain.rollups import Measures, RollupKey, add_into, bucket_start, contributions
from feedbackloop.contracts import ClassifiedFeedback

__all__ = ["BatchWrites", "ClusterChange", "Staged", "batch_writes"]


@dataclass(frozen=True, slots=True)
class Staged:
    """One item in a batch: the stored revision before the batch (None: new) and the revisions applied since,
    oldest first, each with its place in the batch (``(seq, item)``, ``seq`` increasing over the whole batch)."""

    before: ClassifiedFeedback | None
    revisions: Sequence[tuple[int, ClassifiedFeedback]]


@dataclass(slots=True)
class ClusterChange:
    """The net change of one cluster: items joined less items left; the terms applied last (None: unchanged);
    the latest ``created_at`` of the items that joined (None when none joined: the row is only updated)."""

    items: int = 0
    terms: list[str] | None = None
    last_seen: datetime | None = None


@dataclass(slots=True)
class BatchWrites:
    rollups: dict[RollupKey, Measures] = field(default_factory=dict)
    dirty_hours: set[int] = field(default_factory=set)
    names: dict[str, tuple[datetime, str]] = field(default_factory=dict)  # theme id -> (seen_at, name)
    clusters: dict[str, ClusterChange] = field(default_factory=dict)
    latest: list[ClassifiedFeedback] = field(default_factory=list)  # the item rows to write


def _cluster_steps(item: Staged) -> list[tuple[int, str | None, str | None, ClassifiedFeedback]]:
    """(seq, cluster left, cluster joined, revision) for each revision of the item, from the stored one on."""
    steps = []
    previous = item.before.cluster.id if item.before is not None and item.before.cluster is not None else None
    for seq, revision in item.revisions:
        current = revision.cluster.id if revision.cluster is not None else None
        steps.append((seq, previous, current, revision))
        previous = current
    return steps


def batch_writes(staged: Iterable[Staged]) -> BatchWrites:
    """The merged writes of a batch's items (items without a revision applied are left out)."""
    out = BatchWrites()
    named: dict[str, tuple[datetime, int, str]] = {}
    steps = []
    for item in staged:
        if not item.revisions:
            continue
        latest = item.revisions[-1][1]
        out.latest.append(latest)
        if item.before is not None:
            add_into(out.rollups, contributions(item.before), -1)
            out.dirty_hours.add(bucket_start(item.before.created_at, "hour"))
        add_into(out.rollups, contributions(latest), 1)
        for seq, revision in item.revisions:
            out.dirty_hours.add(bucket_start(revision.created_at, "hour"))
            seen_at = as_utc(revision.created_at)
            for theme_id, name in {t.id: t.name for t in revision.themes if t.id.strip()}.items():
                known = named.get(theme_id)
                if known is None or (seen_at, seq) > known[:2]:
                    named[theme_id] = (seen_at, seq, name)
        steps += _cluster_steps(item)
    out.rollups = {k: m for k, m in out.rollups.items() if not m.is_zero()}
    out.names = {theme_id: (seen_at, name) for theme_id, (seen_at, _, name) in named.items()}
    for _, left, joined, revision in sorted(steps, key=lambda s: s[0]):
        terms = revision.cluster.terms if revision.cluster is not None else []
        if left == joined:
            if joined is not None:
                out.clusters.setdefault(joined, ClusterChange()).terms = list(terms)
            continue
        if left is not None:
            out.clusters.setdefault(left, ClusterChange()).items -= 1
        if joined is not None:
            change = out.clusters.setdefault(joined, ClusterChange())
            change.items += 1
            change.terms = list(terms)
            seen = as_utc(revision.created_at)
            change.last_seen = seen if change.last_seen is None else max(change.last_seen, seen)
    return out
