"""Untrusted JSON in (request bodies, cursors): any document, however hostile, is a value or a 400 problem.

``json.loads`` alone fails on hostile input in ways that are not a ``JSONDecodeError``, and so would be a 500:
``RecursionError`` on deep nesting (``[[[…]]]`` 10,000 deep), ``ValueError`` on an integer of more than
``sys.get_int_max_str_digits()`` digits (4,300), ``UnicodeDecodeError`` on bytes that are not UTF-8. It also
takes ``NaN`` and ``Infinity`` (not JSON) and reads ``1e999`` as infinity, which no API here means and which
PostgreSQL's JSON refuses later, far from the request. :func:`load_json` refuses all of these with
:class:`InvalidJson`, and caps nesting at ``MAX_DEPTH`` whatever the stack it runs on, so that recursive code
downstream (validation, serialization, the store's JSON encoder) never meets a document deeper than that.
:func:`parse_json_body` is the same as a 400 ``MalformedJson`` problem.
"""

from __future__ import annotations

import json
import math
from typing import Any

from feedbackloop.http.problems import MalformedJson, decoding_failure

__all__ = ["MAX_DEPTH", "InvalidJson", "load_json", "parse_json_body"]

#: Deepest nesting taken: vendor webhooks nest under 10 levels, notification's rule trees under 10.
MAX_DEPTH = 64


class InvalidJson(ValueError):
    """The document is refused; the message says why, in words fit for a problem body's ``errors``."""


def load_json(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """The value of the JSON document ``data``; raises :class:`InvalidJson` and nothing else on any input."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except InvalidJson:
        raise
    except (RecursionError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidJson(decoding_failure(exc) or str(exc)) from None
    if _deeper_than(value, max_depth, data):
        raise InvalidJson(f"nested deeper than {max_depth} levels")
    return value


def parse_json_body(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The request body's JSON value; raises the 400 ``MalformedJson`` problem (``errors`` says why) on any other."""
    try:
        return load_json(body, max_depth=max_depth)
    except InvalidJson as exc:
        raise MalformedJson(str(exc)) from exc


def _refuse_constant(name: str) -> Any:
    raise InvalidJson(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise InvalidJson(f"the number {literal[:20]}… is out of range" if len(literal) > 20
                          else f"the number {literal} is out of range")
    return value


def _deeper_than(value: Any, limit: int, data: bytes | str) -> bool:
    # A document with no more brackets than the limit cannot nest deeper: most bodies skip the walk.
    brackets = data.count(b"[") + data.count(b"{") if isinstance(data, bytes) else data.count("[") + data.count("{")
    if brackets <= limit:
        return False
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:  # iterative: the point is not to recurse as deep as the document
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
