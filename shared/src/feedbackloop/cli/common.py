"""What every ``feedbackloop`` command shares, the services' own included: one-line failures, ``--since``."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import typer

__all__ = ["fail", "parse_since"]


def fail(message: str) -> NoReturn:
    """One line on stderr and exit 1: a command never ends in a traceback for something the user can fix."""
    print(f"feedbackloop: {message}", file=sys.stderr)
    raise typer.Exit(1)


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``2h``, ``30m``, ``7d`` ago, or an ISO-8601 time (UTC when it names no zone)."""
    now = now or datetime.now(UTC)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", value.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now - timedelta(**{unit: float(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since takes a duration like 2h or 7d, or an ISO time; got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
