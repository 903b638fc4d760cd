"""Opaque cursors for list endpoints: ``{"items": [...], "next_cursor": "…" | null}``.

A cursor is base64url JSON of the last row's sort key, so pages stay stable while rows are added.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from feedbackloop.http.json_input import load_json
from feedbackloop.http.problems import BadRequest

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The sort key in ``cursor``; a malformed cursor is a 400 naming the ``cursor`` parameter.

    The client can send anything as a cursor: a key is a flat list of scalars, so anything nested is refused.
    """
    try:
        key = load_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), max_depth=1)
    except ValueError as exc:  # bad base64 (binascii.Error) or InvalidJson
        raise BadRequest(
            "Malformed cursor: pass back `next_cursor` exactly as it was returned.",
            errors=[{"field": "cursor", "message": "malformed cursor"}],
        ) from exc
    if not isinstance(key, list) or len(key) != length:
        raise BadRequest(
            "Malformed cursor: pass back `next_cursor` exactly as it was returned.",
            errors=[{"field": "cursor", "message": "malformed cursor"}],
        )
    return key
