"""A batch's merged writes equal the writes of its items one revision at a time (domain/batch.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregation_testkit import classified

from aggregation.domain.batch import Staged, batch_writes
from aggregation.domain.rollups import Measures, RollupKey, merge, rollup_changes
from feedbackloop.contracts import ClassifiedFeedback

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def _item(n: int, revision: int, rng: random.Random, **changes: Any) -> ClassifiedFeedback:
    theme = rng.choice(["login", "billing", "export"])
    return classified(str(n), revision=revision, created_at=T0 + timedelta(hours=rng.randrange(48)),
                      customer={"id": f"c{rng.randrange(5)}", "plan": "pro", "mrr": float(rng.choice([0, 50]))},
                      sentiment={"label": rng.choice(["negative", "positive"]), "score": rng.choice([-0.5, 0.5])},
                      themes=[{"id": theme, "name": theme.title() + str(revision), "confidence": 0.9}], **changes)


def _close(a: dict[RollupKey, Measures], b: dict[RollupKey, Measures]) -> bool:
    keys = {k for k, m in a.items() if not m.is_zero()} | {k for k, m in b.items() if not m.is_zero()}
    return all(abs(getattr(a.get(k, Measures()), name) - getattr(b.get(k, Measures()), name)) < 1e-9
               for k in keys for name in Measures().values())


def test_merged_rollups_equal_the_sum_of_each_revisions_changes() -> None:
    rng = random.Random(3)
    stored = {n: _item(n, 1, rng) for n in range(10)}
    staged = []
    sequential = []
    seq = 0
    for n in range(20):  # ten stored items corrected (some twice), ten new ones (some corrected in the batch)
        before = stored.get(n)
        revisions = []
        previous = before
        for revision in range(2 if before else 1, rng.choice((3, 4)) if n % 3 == 0 else (3 if before else 2)):
            seq += 1
            item = _item(n, revision, rng)
            revisions.append((seq, item))
            sequential.append(rollup_changes(previous, item))
            previous = item
        staged.append(Staged(before, revisions))
    writes = batch_writes(staged)
    assert _close(writes.rollups, merge(sequential))
    assert {str(i.feedback_id): i.revision for i in writes.latest} == {
        str(s.revisions[-1][1].feedback_id): s.revisions[-1][1].revision for s in staged}


def test_names_keep_the_newest_item_and_clusters_their_net_size() -> None:
    def at(hours: int, name: str, **changes: Any) -> ClassifiedFeedback:
        return classified(name, created_at=T0 + timedelta(hours=hours),
                          themes=[{"id": "login", "name": name, "confidence": 0.9}], **changes)

    k1, k2 = {"id": "k1", "terms": ["a"]}, {"id": "k2", "terms": ["b"]}
    old = at(0, "Old", cluster=k1)
    writes = batch_writes([
        Staged(None, [(1, at(5, "Newest"))]),
        Staged(None, [(2, at(1, "Older"))]),
        Staged(None, [(3, at(5, "Same hour, applied last", cluster=k2))]),
        Staged(old, [(4, old.model_copy(update={"revision": 2, "cluster": None}))]),  # leaves k1
    ])
    assert writes.names == {"login": (T0 + timedelta(hours=5), "Same hour, applied last")}
    assert writes.clusters["k1"].items == -1 and writes.clusters["k1"].last_seen is None
    assert writes.clusters["k2"].items == 1 and writes.clusters["k2"].terms == ["b"]
    assert writes.dirty_hours == {int((T0 + timedelta(hours=h)).timestamp()) for h in (0, 1, 5)}
