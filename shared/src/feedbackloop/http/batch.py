"""Request bodies that carry one object or a JSON list of them (``POST /v1/feedback``, ``POST /v1/classify``)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from feedbackloop.http.json_input import parse_json_body
from feedbackloop.http.problems import ProblemError

__all__ = ["parse_one_or_many"]

T = TypeVar("T")


def parse_one_or_many(body: bytes, adapter: TypeAdapter[T], *, max_items: int, noun: str,
                      too_many_title: str = "Too many items", invalid_suffix: str = "") -> tuple[list[T], bool]:
    """The validated items and whether the body was a single object.

    Malformed JSON (too deep or a number too long included: :mod:`feedbackloop.http.json_input`) → 400; not an
    object or a non-empty list → 422; more than ``max_items`` → 413; any invalid item → 422 naming every bad field
    (``3.text`` in a list, ``text`` for a single object), nothing accepted.
    """
    payload: Any = parse_json_body(body)
    single = isinstance(payload, dict)
    entries = [payload] if single else payload
    if not isinstance(entries, list) or not entries:
        raise ProblemError(f"Send one {noun} or a non-empty JSON list of them.", status=422, title="Invalid request",
                           errors=[{"field": "body", "message": "expected an object or a non-empty list"}])
    if len(entries) > max_items:
        raise ProblemError(f"A request holds at most {max_items} items; this one has {len(entries)}.", status=413,
                           title=too_many_title, errors=[{"field": "body", "message": f"more than {max_items} items"}])
    items: list[T] = []
    errors: list[dict[str, str]] = []
    for index, entry in enumerate(entries):
        try:
            items.append(adapter.validate_python(entry))
        except ValidationError as exc:
            prefix = "" if single else f"{index}."
            errors += [{"field": (prefix + ".".join(str(p) for p in e["loc"])) if e["loc"]
                        else (prefix.rstrip(".") or "body"), "message": e["msg"], "type": e["type"]}
                       for e in exc.errors()]
    if errors:
        named = ", ".join(dict.fromkeys(e["field"] for e in errors[:5]))
        raise ProblemError(f"Invalid value for: {named}.{invalid_suffix}", status=422, title="Invalid request",
                           errors=errors[:100])
    return items, single
