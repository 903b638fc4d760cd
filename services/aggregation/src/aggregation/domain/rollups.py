"""Incremental rollups: what one item adds to each (bucket, dimension, key) counter. Pure.

An item contributes to a bucket of each size (``hour``, ``day``, ``week`` starting Monday, and the
all-time ``total``) chosen by its ``created_at`` — never by arrival — so events that come late or
out of order land where they belong. In each bucket it counts once under ``all`` and once under each
dimension: ``theme`` (once per distinct theme; an item without themes adds nothing there, a blank theme
id counts as ``unknown``), ``product_area``, ``kind``, ``source``, ``channel``, ``plan``, ``customer``
(a missing value counts as ``unknown``), and, in ``day`` and ``total`` buckets only, ``theme_customer``
(key ``theme\\x1fcustomer``, what the impact score's distinct customers are read from).

A correction is :func:`rollup_changes` (old, new): the old revision's contributions subtracted, the
new one's added, merged per key, so the item moves from its old labels to its new ones and nothing is
counted twice. Every measure is a sum, hence exact under subtraction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Literal

from feedbackloop.contracts import ClassifiedFeedback

__all__ = [
    "BUCKETS",
    "DIMENSIONS",
    "THEME_CUSTOMER_SEP",
    "UNKNOWN",
    "Bucket",
    "Measures",
    "RollupKey",
    "add_into",
    "bucket_start",
    "contributions",
    "nps_class",
    "rollup_changes",
]

Bucket = Literal["hour", "day", "week", "total"]
BUCKETS: tuple[Bucket, ...] = ("hour", "day", "week", "total")
DIMENSIONS = ("all", "theme", "product_area", "kind", "source", "channel", "plan", "customer", "theme_customer")
UNKNOWN = "unknown"
THEME_CUSTOMER_SEP = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIZE = {"hour": 3600, "day": 86400, "week": 7 * 86400}


@dataclass(frozen=True, slots=True)
class RollupKey:
    bucket: Bucket
    start: int  # epoch seconds of the bucket's start (UTC); 0 for ``total``
    dimension: str
    key: str


@dataclass(slots=True)
class Measures:
    """Sums over the items of one rollup cell. Shares and averages are derived from them when read."""

    count: int = 0
    negative: int = 0
    sentiment_sum: float = 0.0
    urgent: int = 0  # urgency high or critical
    mrr_sum: float = 0.0  # sum of the items' customer mrr (items without mrr add 0)
    nps_responses: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    csat_responses: int = 0
    csat_satisfied: int = 0

    def scaled(self, sign: int) -> Measures:
        return Measures(*(getattr(self, name) * sign for name in _MEASURES))

    def add(self, other: Measures, sign: int = 1) -> None:
        """Add ``other`` (times ``sign``) into these measures."""
        for name in _MEASURES:
            setattr(self, name, getattr(self, name) + getattr(other, name) * sign)

    def is_zero(self) -> bool:
        return all(abs(getattr(self, name)) < 1e-9 for name in _MEASURES)

    def values(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in _MEASURES}


_MEASURES = tuple(f.name for f in fields(Measures))


def bucket_start(moment: datetime, bucket: Bucket) -> int:
    """Epoch seconds of the start of the ``bucket`` holding ``moment`` (weeks start Monday 00:00 UTC)."""
    if bucket == "total":
        return 0
    seconds = int((moment.astimezone(UTC) - _EPOCH).total_seconds() // 1)
    if bucket == "week":
        day = seconds - seconds % 86400
        weekday = (datetime.fromtimestamp(day, UTC)).weekday()
        return day - weekday * 86400
    return seconds - seconds % _SIZE[bucket]


def bucket_size(bucket: Bucket) -> timedelta:
    return timedelta(seconds=_SIZE[bucket])


def nps_class(value: float, scale: int) -> Literal["promoter", "passive", "detractor"] | None:
    """NPS class of a 0-10 rating (9-10 promoter, 7-8 passive, 0-6 detractor); None off a 10-point scale."""
    if scale != 10:
        return None
    if value >= 9:
        return "promoter"
    return "passive" if value >= 7 else "detractor"


def item_measures(item: ClassifiedFeedback) -> Measures:
    """The measures of one item. NPS counts ``nps`` ratings on a 0-10 scale; CSAT counts ``csat`` ratings on
    a 5-point scale, satisfied when 4 or 5. Other ratings (stars) count in neither."""
    m = Measures(count=1, negative=int(item.sentiment.label == "negative"), sentiment_sum=item.sentiment.score,
                 urgent=int(item.urgency in ("high", "critical")), mrr_sum=item.customer.mrr or 0.0)
    rating = item.rating
    if rating is not None and rating.kind == "nps":
        cls = nps_class(rating.value, rating.scale)
        if cls is not None:
            m.nps_responses = 1
            m.nps_promoters = int(cls == "promoter")
            m.nps_detractors = int(cls == "detractor")
    elif rating is not None and rating.kind == "csat" and rating.scale == 5:
        m.csat_responses = 1
        m.csat_satisfied = int(rating.value >= 4)
    return m


def _keys(item: ClassifiedFeedback) -> list[tuple[str, str]]:
    themes = sorted({t.id.strip() or UNKNOWN for t in item.themes})
    customer = item.customer.id or UNKNOWN
    keys = [("all", "*")] + [("theme", t) for t in themes] + [
        ("product_area", item.product_area or UNKNOWN), ("kind", item.kind), ("source", item.source),
        ("channel", item.channel), ("plan", item.customer.plan or UNKNOWN), ("customer", customer)]
    return keys


def contributions(item: ClassifiedFeedback) -> dict[RollupKey, Measures]:
    """Every rollup cell ``item`` counts in, with what it adds there."""
    measures = item_measures(item)
    out: dict[RollupKey, Measures] = {}
    keys = _keys(item)
    themes = sorted({t.id.strip() or UNKNOWN for t in item.themes})
    for bucket in BUCKETS:
        start = bucket_start(item.created_at, bucket)
        for dimension, key in keys:
            out[RollupKey(bucket, start, dimension, key)] = measures
        if bucket in ("day", "total") and item.customer.id:
            for theme in themes:
                out[RollupKey(bucket, start, "theme_customer", f"{theme}{THEME_CUSTOMER_SEP}{item.customer.id}")] = (
                    measures)
    return out


def add_into(total: dict[RollupKey, Measures], part: dict[RollupKey, Measures], sign: int = 1) -> None:
    """Add ``part`` (times ``sign``) into ``total``, cell by cell."""
    for key, m in part.items():
        cell = total.get(key)
        if cell is None:
            total[key] = m.scaled(sign)
        else:
            cell.add(m, sign)


def rollup_changes(old: ClassifiedFeedback | None, new: ClassifiedFeedback) -> dict[RollupKey, Measures]:
    """The deltas that take the rollups from holding ``old`` (None: nothing) to holding ``new``.

    Cells where the two cancel out are left out, so a correction that changes only the text writes nothing.
    """
    delta: dict[RollupKey, Measures] = {}
    if old is not None:
        add_into(delta, contributions(old), -1)
    add_into(delta, contributions(new), 1)
    return {k: v for k, v in delta.items() if not v.is_zero()}


def merge(changes: Iterable[dict[RollupKey, Measures]]) -> dict[RollupKey, Measures]:
    total: dict[RollupKey, Measures] = {}
    for part in changes:
        add_into(total, part)
    return total
