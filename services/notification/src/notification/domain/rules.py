"""Notification rules: the match tree, its validation, and the matcher. Pure: no I/O.

A rule, as the HTTP contract takes it::

    {"name": "billing bugs", "team": "billing",
     "match": {"all": [{"field": "kind", "op": "eq", "value": "bug"}]},
     "channels": [{"type": "webhook", "url": "https://…", "secret": "…"}],
     "enabled": true}

A match node is ``{"all": [node…]}`` (every node matches; ``{"all": []}`` matches everything),
``{"any": [node…]}`` (at least one matches; ``{"any": []}`` matches nothing), ``{"not": node}``, or a
condition ``{"field": "<dotted path>", "op": "<op>", "value": …}``. Nodes nest.

How a condition is evaluated (see :mod:`notification.domain.fields` for paths): the path yields the values it
reaches, lists flattened, so ``themes.id`` yields every theme's id and ``tags`` every tag. A positive operator
(``eq, in, contains, gt, gte, lt, lte``) matches when **any** value satisfies it; ``ne`` matches when **no**
value equals ``value`` (it is exactly ``not eq``), so a missing field is ``ne`` anything and matches no
positive operator. ``eq``/``ne`` compare JSON values exactly (``true`` is not ``1``); ``in`` takes a list;
``contains`` is a case-insensitive substring test on strings and equality on anything else (so on a list field
it means membership); ``gt…lte`` compare numbers with numbers and strings with strings (ISO timestamps in the
same format order correctly), and never match across types or on ``null``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from notification.domain.errors import RuleInvalid
from notification.domain.fields import CATALOG, EVENT_FIELD, EVENT_KINDS, resolve

__all__ = [
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_THROTTLE_WINDOW",
    "OPS",
    "RuleInvalid",
    "Throttle",
    "kinds_matched",
    "matches",
    "parse_throttle",
    "validate_match",
]

OPS: tuple[str, ...] = ("eq", "ne", "in", "contains", "gt", "gte", "lt", "lte")
MAX_DEPTH = 10
MAX_CONDITIONS = 200
_ORDERED = ("gt", "gte", "lt", "lte")
_SCALARS = (str, int, float, bool)
MAX_THROTTLE_WINDOW = 7 * 86_400


@dataclass(frozen=True)
class Throttle:
    """At most ``limit`` messages per ``window_s`` seconds per channel; the rest go out as one digest at its end.

    A window opens with the first message after the previous one closed (not on a fixed clock grid), so a burst
    is never split across two windows by a clock boundary: a burst shorter than ``window_s`` gives at most
    ``limit`` messages plus one digest.
    """

    limit: int
    window_s: float

    def to_json(self) -> dict[str, Any]:
        return {"limit": self.limit, "window_s": self.window_s}


def parse_throttle(raw: Any, loc: str = "throttle") -> Throttle | None:
    """``None`` (no throttle) or ``{"limit": N >= 0, "window_s": 1…604800}``; :class:`RuleInvalid` names the key."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise RuleInvalid([{"field": loc, "message": 'expected {"limit": N, "window_s": S} or null'}])
    errors: list[dict[str, str]] = []
    extra = set(raw) - {"limit", "window_s"}
    if extra:
        errors.append({"field": loc, "message": f"unknown key(s) {sorted(extra)}; a throttle has limit, window_s"})
    limit, window = raw.get("limit"), raw.get("window_s")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 10_000:
        errors.append({"field": f"{loc}.limit", "message": "an integer from 0 to 10000: messages per window"})
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 1 <= window <= MAX_THROTTLE_WINDOW:
        errors.append({"field": f"{loc}.window_s",
                       "message": f"a number of seconds from 1 to {MAX_THROTTLE_WINDOW}"})
    if errors:
        raise RuleInvalid(errors)
    return Throttle(limit=int(limit), window_s=float(window))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- validation


def validate_match(raw: Any, loc: str = "match") -> dict[str, Any]:
    """Check a match tree; returns it (as given) or raises :class:`RuleInvalid` naming every problem."""
    errors: list[dict[str, str]] = []
    count = [0]
    _check_node(raw, loc, 0, errors, count)
    if count[0] > MAX_CONDITIONS:
        errors.append({"field": loc, "message": f"at most {MAX_CONDITIONS} conditions per rule"})
    if errors:
        raise RuleInvalid(errors[:50])
    return raw  # type: ignore[no-any-return]


def _check_node(node: Any, loc: str, depth: int, errors: list[dict[str, str]], count: list[int]) -> None:
    if depth > MAX_DEPTH:
        errors.append({"field": loc, "message": f"match nodes nest at most {MAX_DEPTH} deep"})
        return
    if not isinstance(node, Mapping):
        errors.append({"field": loc, "message": 'expected an object: {"all": […]}, {"any": […]}, {"not": {…}} '
                                                'or {"field", "op", "value"}'})
        return
    keys = set(node)
    groups = keys & {"all", "any", "not"}
    if groups:
        if len(keys) != 1:
            errors.append({"field": loc, "message": f"a node holds exactly one of all, any, not; got {sorted(keys)}"})
            return
        (key,) = groups
        inner = node[key]
        if key == "not":
            _check_node(inner, f"{loc}.not", depth + 1, errors, count)
        elif not isinstance(inner, list):
            errors.append({"field": f"{loc}.{key}", "message": "expected a list of match nodes"})
        else:
            for i, child in enumerate(inner):
                _check_node(child, f"{loc}.{key}.{i}", depth + 1, errors, count)
        return
    count[0] += 1
    _check_condition(node, loc, errors)


def _check_condition(node: Mapping[str, Any], loc: str, errors: list[dict[str, str]]) -> None:
    extra = set(node) - {"field", "op", "value"}
    if extra:
        errors.append({"field": loc, "message": f"unknown key(s) {sorted(extra)}; a condition is "
                                                '{"field", "op", "value"} and a group is all, any or not'})
        return
    missing = [key for key in ("field", "op", "value") if key not in node]
    if missing:
        errors.extend({"field": f"{loc}.{key}", "message": "Field required"} for key in missing)
        return
    path, op, value = node["field"], node["op"], node["value"]
    if not isinstance(path, str) or not CATALOG.kinds_with(path):
        errors.append({"field": f"{loc}.field", "message": _unknown_field(path)})
    if not isinstance(op, str) or op not in OPS:
        errors.append({"field": f"{loc}.op", "message": f"unknown operator {op!r}; use one of {', '.join(OPS)}"})
        return
    problem = _value_problem(op, value)
    if problem is None and path == EVENT_FIELD:
        wanted = value if op == "in" else [value]
        if op in ("eq", "ne", "in") and any(v not in EVENT_KINDS for v in wanted):
            problem = f"event is one of {', '.join(EVENT_KINDS)}"
    if problem:
        errors.append({"field": f"{loc}.value", "message": problem})


def _unknown_field(path: Any) -> str:
    if not isinstance(path, str):
        return "field must be a dotted path such as customer.plan"
    close = difflib.get_close_matches(path, CATALOG.known(), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return (f"unknown field {path!r}{hint}; fields are dotted paths of feedback.classified.v1 or insights.v1 "
            "data, or event")


def _value_problem(op: str, value: Any) -> str | None:
    if op == "in":
        if not isinstance(value, list):
            return "`in` takes a list of values"
        if not all(v is None or isinstance(v, _SCALARS) for v in value):
            return "`in` takes a list of strings, numbers, booleans or null"
    elif op in _ORDERED:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return f"`{op}` takes a number or a string"
    elif op == "contains" and not isinstance(value, _SCALARS):
        return "`contains` takes a string, number or boolean"
    return None


def kinds_matched(node: Any) -> set[str]:
    """The event kinds a (validated) match tree can match, conservatively: a condition on ``event`` (``eq``,
    ``in``, ``ne``) or a positive operator on a field only one kind has narrows it; ``ne`` and ``not`` (a missing
    field matches them) do not."""
    every: set[str] = set(EVENT_KINDS)
    if not isinstance(node, Mapping):
        return every
    if "all" in node:
        found = set(every)
        for child in node["all"] or []:
            found &= kinds_matched(child)
        return found
    if "any" in node:
        return set().union(*(kinds_matched(child) for child in node["any"] or []))
    if "not" in node:
        return every
    path, op, value = node.get("field"), node.get("op"), node.get("value")
    if path == EVENT_FIELD:
        if op == "eq":
            return every & {value}
        if op == "in" and isinstance(value, list):
            return every & set(v for v in value if isinstance(v, str))
        if op == "ne":
            return every - {value}
        return every
    if op == "ne" or not isinstance(path, str):
        return every
    return {str(k) for k in CATALOG.kinds_with(path)} or every


# ---------------------------------------------------------------------------------------------- matching


def matches(rule_match: Mapping[str, Any], event_kind: str, data: Mapping[str, Any]) -> bool:
    """Whether the (validated) match tree holds for an event of ``event_kind`` with ``data``; pure and total."""
    if "all" in rule_match:
        return all(matches(child, event_kind, data) for child in rule_match["all"])
    if "any" in rule_match:
        return any(matches(child, event_kind, data) for child in rule_match["any"])
    if "not" in rule_match:
        return not matches(rule_match["not"], event_kind, data)
    op, expected = rule_match["op"], rule_match["value"]
    values = resolve(event_kind, data, rule_match["field"])
    if op == "ne":
        return not any(_eq(v, expected) for v in values)
    test = _TESTS[op]
    return any(test(v, expected) for v in values)


def _eq(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    return bool(actual == expected)


def _in(actual: Any, expected: Any) -> bool:
    return any(_eq(actual, e) for e in expected)


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return expected.casefold() in actual.casefold()
    return _eq(actual, expected)


def _comparable(actual: Any, expected: Any) -> bool:
    if isinstance(actual, bool) or isinstance(expected, bool):
        return False
    numbers = (int, float)
    return (isinstance(actual, numbers) and isinstance(expected, numbers)) or (
        isinstance(actual, str) and isinstance(expected, str))


def _gt(actual: Any, expected: Any) -> bool:
    return _comparable(actual, expected) and bool(actual > expected)


def _gte(actual: Any, expected: Any) -> bool:
    return _comparable(actual, expected) and bool(actual >= expected)


def _lt(actual: Any, expected: Any) -> bool:
    return _comparable(actual, expected) and bool(actual < expected)


def _lte(actual: Any, expected: Any) -> bool:
    return _comparable(actual, expected) and bool(actual <= expected)


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _eq, "in": _in, "contains": _contains, "gt": _gt, "gte": _gte, "lt": _lt, "lte": _lte,
}
