"""Keyset pagination for every list endpoint: ``{"items": [...], "next_cursor": "…" | null}``.

A cursor is base64url JSON of the last row's sort key, so pages stay stable while rows are added. A list
reads ``limit + 1`` rows after the key; :func:`keyset_page` keeps ``limit`` of them and makes the next cursor
from the last one kept. A cursor the client made up is one problem everywhere (:func:`malformed_cursor`).

    after = cursor_key(cursor, datetime, str)            # None on the first page
    rows = await repo.page(after, limit + 1)
    items, next_cursor = keyset_page(rows, limit, key=lambda r: (r.created_at, r.id))
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from feedbackloop.http.json_input import load_json
from feedbackloop.http.problems import BadRequest

__all__ = ["cursor_key", "decode_cursor", "encode_cursor", "keyset_page", "malformed_cursor"]

R = TypeVar("R")

#: What a cursor's key may hold, part by part.
KeyPart = type[str] | type[int] | type[float] | type[datetime]


def malformed_cursor() -> BadRequest:
    return BadRequest(
        "Malformed cursor: pass back `next_cursor` exactly as it was returned.",
        errors=[{"field": "cursor", "message": "malformed cursor"}],
    )


def encode_cursor(key: Sequence[Any]) -> str:
    """The opaque cursor for a sort key; datetimes travel as ISO 8601."""
    plain = [part.isoformat() if isinstance(part, datetime) else part for part in key]
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The sort key in ``cursor``, untyped; a malformed cursor is a 400 naming the ``cursor`` parameter.

    The client can send anything as a cursor: a key is a flat list of scalars, so anything nested is refused.
    """
    try:
        key = load_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), max_depth=1)
    except ValueError as exc:  # bad base64 (binascii.Error) or InvalidJson
        raise malformed_cursor() from exc
    if not isinstance(key, list) or len(key) != length:
        raise malformed_cursor()
    return key


def cursor_key(cursor: str | None, *types: KeyPart) -> tuple[Any, ...] | None:
    """The typed sort key ``cursor`` carries (None for the first page); 400 naming ``cursor`` otherwise.

    A ``datetime`` part comes back timezone-aware (UTC when the cursor's text had no offset).
    """
    if cursor is None:
        return None
    return tuple(_typed(part, kind) for part, kind in zip(decode_cursor(cursor, len(types)), types, strict=True))


def keyset_page(rows: Sequence[R], limit: int, key: Callable[[R], Sequence[Any]]) -> tuple[list[R], str | None]:
    """The first ``limit`` of ``rows`` (read with ``limit + 1``) and the cursor of the next page, if any."""
    items = list(rows[:limit])
    more = len(rows) > limit and bool(items)
    return items, encode_cursor(key(items[-1])) if more else None


def _typed(part: Any, kind: KeyPart) -> Any:
    if kind is datetime:
        if not isinstance(part, str):
            raise malformed_cursor()
        try:
            at = datetime.fromisoformat(part)
        except ValueError as exc:
            raise malformed_cursor() from exc
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if kind is float and isinstance(part, int) and not isinstance(part, bool):
        return float(part)
    if isinstance(part, bool) or not isinstance(part, kind):
        raise malformed_cursor()
    return part
