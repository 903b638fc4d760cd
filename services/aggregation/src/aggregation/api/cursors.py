"""The sort keys behind the opaque cursors of the lists; a cursor not holding one is a 400 naming ``cursor``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aggregation.domain.items import as_utc
from feedbackloop.http import BadRequest, decode_cursor, encode_cursor

__all__ = ["count_key", "next_cursor", "time_key"]


def _malformed() -> BadRequest:
    return BadRequest("Malformed cursor: pass back `next_cursor` exactly as it was returned.",
                      errors=[{"field": "cursor", "message": "malformed cursor"}])


def time_key(cursor: str | None) -> tuple[datetime, str] | None:
    """The (created_at, id) key of a newest-first list, or None for the first page."""
    if cursor is None:
        return None
    at, last_id = decode_cursor(cursor, 2)
    if not isinstance(at, str) or not isinstance(last_id, str):
        raise _malformed()
    try:
        return as_utc(datetime.fromisoformat(at)), last_id
    except ValueError as exc:
        raise _malformed() from exc


def count_key(cursor: str | None) -> tuple[int, str] | None:
    """The (count, id) key of a most-frequent-first list, or None for the first page."""
    if cursor is None:
        return None
    count, last_id = decode_cursor(cursor, 2)
    if isinstance(count, bool) or not isinstance(count, int) or not isinstance(last_id, str):
        raise _malformed()
    return count, last_id


def next_cursor(key: list[Any] | None) -> str | None:
    return encode_cursor(key) if key is not None else None
