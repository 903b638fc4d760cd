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

import base64
import binascii
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notification.domain.fields import CATALOG, EVENT_FIELD, EVENT_KINDS, resolve
from notification.domain.targets import TargetPolicy, check_webhook_url

__all__ = [
    "CHANNEL_TYPES",
    "MASK",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "OPS",
    "RuleInvalid",
    "WebhookChannel",
    "matches",
    "parse_channels",
    "validate_match",
]

OPS: tuple[str, ...] = ("eq", "ne", "in", "contains", "gt", "gte", "lt", "lte")
CHANNEL_TYPES: tuple[str, ...] = ("webhook",)
#: What a secret looks like in every answer; on update, a channel given this secret keeps the stored one.
MASK = "***"
MAX_DEPTH = 10
MAX_CONDITIONS = 200
_ORDERED = ("gt", "gte", "lt", "lte")
_SCALARS = (str, int, float, bool)


@dataclass
class RuleInvalid(ValueError):
    """A rule the domain rejects; ``errors`` holds ``{"field": <location>, "message": …}`` entries."""

    errors: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)


@dataclass(frozen=True)
class WebhookChannel:
    """A webhook target. ``secret`` starting ``whsec_`` is base64 (Standard Webhooks); otherwise its UTF-8 bytes."""

    url: str
    secret: str
    type: str = "webhook"

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "url": self.url, "secret": self.secret}

    def masked(self) -> dict[str, str]:
        return {"type": self.type, "url": self.url, "secret": MASK}


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


def parse_channels(raw: Any, policy: TargetPolicy, previous: Sequence[WebhookChannel] = ()) -> list[WebhookChannel]:
    """Check the ``channels`` list and return the channels, or raise :class:`RuleInvalid` naming each problem.

    A channel whose ``secret`` is omitted or :data:`MASK` keeps the secret of the ``previous`` channel with the same
    URL (so a client may PUT back what it read); without such a channel the secret is required.
    """
    loc = "channels"
    if not isinstance(raw, list) or not raw:
        raise RuleInvalid([{"field": loc, "message": "give at least one channel"}])
    errors: list[dict[str, str]] = []
    channels: list[WebhookChannel] = []
    kept = {c.url: c.secret for c in previous}
    for i, entry in enumerate(raw):
        here = f"{loc}.{i}"
        if not isinstance(entry, Mapping):
            errors.append({"field": here, "message": "expected an object"})
            continue
        kind = entry.get("type")
        if kind not in CHANNEL_TYPES:
            errors.append({"field": f"{here}.type",
                           "message": f"unsupported channel type {kind!r}; supported channel types: "
                                      f"{', '.join(CHANNEL_TYPES)}"})
            continue
        extra = set(entry) - {"type", "url", "secret"}
        if extra:
            errors.append({"field": here,
                           "message": f"unknown key(s) {sorted(extra)}; a webhook has type, url, secret"})
        url = entry.get("url")
        if not isinstance(url, str) or not url:
            errors.append({"field": f"{here}.url", "message": "Field required: the URL to POST to"})
        else:
            url_problem = check_webhook_url(url, policy)
            if url_problem:
                errors.append({"field": f"{here}.url", "message": url_problem})
        secret = entry.get("secret")
        if (secret is None or secret == MASK) and isinstance(url, str) and url in kept:
            secret = kept[url]
        secret_problem = _secret_problem(secret)
        if secret_problem:
            errors.append({"field": f"{here}.secret", "message": secret_problem})
        if isinstance(url, str) and isinstance(secret, str):
            channels.append(WebhookChannel(url=url, secret=secret))
    if errors:
        raise RuleInvalid(errors)
    return channels


def _secret_problem(secret: Any) -> str | None:
    if secret is None or secret == MASK:
        return "Field required: the signing secret (whsec_<base64>, or any string: its UTF-8 bytes are the key)"
    if not isinstance(secret, str):
        return "the secret is a string"
    if secret.startswith("whsec_"):
        encoded = secret[len("whsec_"):]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            return "a whsec_ secret is whsec_ followed by base64"
        if not key:
            return "the key of a whsec_ secret must not be empty"
        return None
    if not secret.strip() or len(secret) > 512:
        return "the secret must be 1 to 512 characters (or whsec_<base64>)"
    return None


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
