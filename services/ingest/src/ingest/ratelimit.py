"""Per-source and per-API-key request limits (a moving one-minute window, in this process's memory).

``check`` raises a 429 problem with ``Retry-After`` when the caller is over its limit. Several ingest
replicas each enforce the limit on their own share of the traffic.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from feedbackloop.http import ProblemError

__all__ = ["RateLimits"]


class RateLimits:
    def __init__(self, per_source: int, per_key: int) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._source = RateLimitItemPerMinute(per_source)
        self._key = RateLimitItemPerMinute(per_key)

    def check_source(self, source: str) -> None:
        self._check(self._source, "source", source, f"Source `{source}`")

    def check_key(self, key_id: str) -> None:
        self._check(self._key, "key", key_id, "This API key")

    def _check(self, item: RateLimitItemPerMinute, kind: str, name: str, who: str) -> None:
        if self._limiter.hit(item, kind, name):
            return
        reset, _ = self._limiter.get_window_stats(item, kind, name)
        retry = max(1, math.ceil(reset - time.time()))
        raise ProblemError(
            f"{who} sent more than {item.amount} requests in a minute; retry in {retry} s.",
            status=429,
            title="Too many requests",
            headers={"Retry-After": str(retry)},
            limit=item.amount,
        )
