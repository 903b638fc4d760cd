"""Per-source and per-API-key request limits (a moving one-minute window, in this process's memory).

``check`` raises a 429 problem with ``Retry-After`` when the caller is over its limit. Several ingest
replicas each enforce the limit on their own share of the traffic.

Each key keeps the times of its accepted requests of the last minute in a deque: a check drops the
expired ones from the front and appends at the back, so it costs O(1) amortized whatever the limit,
and memory is at most ``limit`` timestamps per key. (The ``limits`` library's in-memory moving window,
used before, inserted at the front of a list — O(requests in the window) per request — and started a
timer thread every 10 ms: 5 % of ingest's CPU at a few hundred requests per second.) Runs on the
event loop only: no locks needed.
"""

from __future__ import annotations

import math
import time
from collections import deque

from feedbackloop.http import ProblemError

__all__ = ["MovingWindow", "RateLimits"]

WINDOW_SECONDS = 60.0


class MovingWindow:
    """At most ``limit`` hits per key in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be ≥ 1 and window > 0")
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float | None = None) -> float:
        """Count a hit for ``key`` and return 0, or count nothing and return the seconds until one is allowed."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] - horizon
        hits.append(now)
        return 0.0


class RateLimits:
    def __init__(self, per_source: int, per_key: int) -> None:
        self._source = MovingWindow(per_source)
        self._key = MovingWindow(per_key)

    def check_source(self, source: str) -> None:
        self._check(self._source, source, f"Source `{source}`")

    def check_key(self, key_id: str) -> None:
        self._check(self._key, key_id, "This API key")

    @staticmethod
    def _check(window: MovingWindow, name: str, who: str) -> None:
        wait = window.hit(name)
        if not wait:
            return
        retry = max(1, math.ceil(wait))
        raise ProblemError(
            f"{who} sent more than {window.limit} requests in a minute; retry in {retry} s.",
            status=429,
            title="Too many requests",
            headers={"Retry-After": str(retry)},
            limit=window.limit,
        )
