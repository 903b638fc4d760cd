"""Hourly series with prefix sums: O(1) totals over any run of whole hours. Pure."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DAY", "HOUR", "HourlySeries"]

HOUR = 3600
DAY = 86400


class HourlySeries:
    """Counts per hour from ``start`` (epoch seconds, a whole hour) for ``hours`` hours; missing hours are 0."""

    def __init__(self, start: int, hours: int, values: Mapping[int, float]) -> None:
        self.start = start
        self.hours = hours
        prefix = [0.0] * (hours + 1)
        running = 0.0
        for i in range(hours):
            running += values.get(start + i * HOUR, 0.0)
            prefix[i + 1] = running
        self._prefix = prefix

    def _index(self, moment: int) -> int:
        return min(max((moment - self.start) // HOUR, 0), self.hours)

    def total(self, begin: int, end: int) -> float:
        """Sum over the hours in [begin, end); hours outside the series count 0."""
        return self._prefix[self._index(end)] - self._prefix[self._index(begin)]

    def at(self, hour: int) -> float:
        return self.total(hour, hour + HOUR)
