"""Per-source delivery statistics over the last 24 hours, in hourly buckets. Pure: time is passed in.

What ``GET /v1/sources`` shows: deliveries, items, tracker changes, ignored payloads and rejections by reason, the
last delivery and the last outcome. Kept in memory by each ingest process (they restart empty): the durable
record of what arrived is the item store.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["SourceStats", "SourceWindow"]

_HOURS = 24


@dataclass
class _Bucket:
    hour: datetime
    deliveries: int = 0
    items: int = 0
    changes: int = 0
    ignored: int = 0
    rejections: Counter[str] = field(default_factory=Counter)


@dataclass
class SourceWindow:
    buckets: deque[_Bucket] = field(default_factory=lambda: deque(maxlen=_HOURS))
    last_delivery_at: datetime | None = None
    last_outcome: str | None = None
    last_rejection: str | None = None

    def bucket(self, now: datetime) -> _Bucket:
        hour = now.replace(minute=0, second=0, microsecond=0)
        if not self.buckets or self.buckets[-1].hour != hour:
            self.buckets.append(_Bucket(hour))
        return self.buckets[-1]

    def recent(self, now: datetime) -> list[_Bucket]:
        since = now - timedelta(hours=_HOURS)
        return [b for b in self.buckets if b.hour > since]


class SourceStats:
    """Counts per source; ``record_*`` take the time of the event, ``summary`` the time of the question."""

    def __init__(self) -> None:
        self._sources: dict[str, SourceWindow] = {}

    def _window(self, source: str) -> SourceWindow:
        return self._sources.setdefault(source, SourceWindow())

    def record_accepted(self, source: str, now: datetime, items: int, changes: int = 0) -> None:
        window = self._window(source)
        bucket = window.bucket(now)
        bucket.deliveries += 1
        bucket.items += items
        bucket.changes += changes
        window.last_delivery_at, window.last_outcome = now, "accepted"

    def record_ignored(self, source: str, now: datetime) -> None:
        window = self._window(source)
        bucket = window.bucket(now)
        bucket.deliveries += 1
        bucket.ignored += 1
        window.last_delivery_at, window.last_outcome = now, "ignored"

    def record_rejected(self, source: str, now: datetime, reason: str) -> None:
        window = self._window(source)
        bucket = window.bucket(now)
        bucket.deliveries += 1
        bucket.rejections[reason] += 1
        window.last_delivery_at, window.last_outcome, window.last_rejection = now, "rejected", reason

    def summary(self, source: str, now: datetime, configured: bool) -> dict[str, object]:
        window = self._sources.get(source, SourceWindow())
        recent = window.recent(now)
        rejections: Counter[str] = Counter()
        for b in recent:
            rejections.update(b.rejections)
        deliveries = sum(b.deliveries for b in recent)
        if not configured:
            status = "not_configured"
        elif not deliveries:
            status = "idle"
        elif window.last_outcome == "rejected":
            status = "failing"
        else:
            status = "ok"
        return {
            "status": status,
            "configured": configured,
            "last_delivery_at": window.last_delivery_at,
            "last_outcome": window.last_outcome,
            "last_rejection": window.last_rejection,
            "deliveries_24h": deliveries,
            "items_24h": sum(b.items for b in recent),
            "tracker_changes_24h": sum(b.changes for b in recent),
            "ignored_24h": sum(b.ignored for b in recent),
            "rejections_24h": dict(sorted(rejections.items())),
        }
