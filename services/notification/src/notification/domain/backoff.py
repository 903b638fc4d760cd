"""When a delivery is tried again. Pure: the schedule, jitter, ``Retry-After`` and which failures retry.

The schedule is a list of delays in seconds, one per attempt: entry *n* is the wait before attempt *n + 1*,
counted from the previous failure (entry 0 from when the event arrived). The default
``0,5,300,1800,7200,18000,36000,36000`` tries at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h:
8 attempts over about 27 hours, then the delivery is ``failed``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = [
    "DEFAULT_SCHEDULE",
    "MAX_RETRY_AFTER",
    "is_retryable",
    "next_delay",
    "parse_retry_after",
    "parse_schedule",
]

DEFAULT_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"
#: A ``Retry-After`` longer than this (one day) is capped.
MAX_RETRY_AFTER = 86_400.0


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"0,5,300"`` → ``(0.0, 5.0, 300.0)``; ``ValueError`` naming the bad entry when not non-negative numbers."""
    delays: list[float] = []
    for raw in text.split(","):
        entry = raw.strip()
        try:
            delay = float(entry)
        except ValueError:
            raise ValueError(f"retry schedule entry {entry!r} is not a number of seconds") from None
        if not 0 <= delay < float("inf"):
            raise ValueError(f"retry schedule entry {entry!r} must be a finite number >= 0")
        delays.append(delay)
    return tuple(delays)


def is_retryable(status: int | None) -> bool:
    """Whether a failed attempt is worth repeating: a network error (``None``), 5xx, 408 or 429.

    Any other status (4xx, and 3xx since redirects are not followed) says the request itself is wrong.
    """
    return status is None or status >= 500 or status in (408, 429)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); ``None`` when absent or invalid."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


def next_delay(schedule: Sequence[float], attempts_made: int, *, retry_after: float | None = None,
               jitter: float = 0.1, rand: Callable[[], float] = random.random) -> float | None:
    """Seconds to wait before the next attempt after ``attempts_made`` attempts; ``None`` when the schedule is spent.

    The scheduled delay is spread by ±``jitter`` (a fraction) so that deliveries failing together do not retry in
    lockstep; a ``Retry-After`` longer than that wins (capped at :data:`MAX_RETRY_AFTER`).
    """
    if attempts_made >= len(schedule):
        return None
    delay = schedule[attempts_made] * (1 + jitter * (2 * rand() - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return max(0.0, delay)
