"""Time windows of the KPI and theme endpoints: ``7d``-style lengths, aligned to whole hours. Pure.

Rollups are hourly at their finest, so every window ends on a whole hour: the default end is the
hour after now (the current, partial hour included), and a given ``to`` or ``from`` must be on a whole
hour. The previous window is the one of the same length just before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["MAX_WINDOW", "Window", "ceil_hour", "is_whole_hour", "parse_length", "window_ending"]

MAX_WINDOW = timedelta(days=366)
_LENGTH = re.compile(r"^([1-9][0-9]{0,3})([hdw])$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Window:
        return Window(self.start - self.length, self.start)


def parse_length(text: str) -> timedelta:
    """``24h``, ``7d``, ``4w`` → a timedelta; raises ValueError (with what is allowed) otherwise."""
    match = _LENGTH.match(text.strip())
    if not match:
        raise ValueError("must be a number and a unit h, d or w, e.g. 7d")
    length = int(match.group(1)) * _UNIT[match.group(2)]
    if length > MAX_WINDOW:
        raise ValueError("must be at most 366d")
    return length


def is_whole_hour(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0 and moment.microsecond == 0


def ceil_hour(moment: datetime) -> datetime:
    """The first whole hour at or after ``moment`` (UTC)."""
    moment = moment.astimezone(UTC)
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def window_ending(end: datetime, length: timedelta) -> Window:
    return Window(end - length, end)
