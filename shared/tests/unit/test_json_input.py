"""Untrusted JSON: every hostile document is a value or a 400 naming why, never another exception."""

from __future__ import annotations

import base64
import json

import pytest
from pydantic import BaseModel, TypeAdapter

from feedbackloop.http import BadRequest, InvalidJson, MalformedJson, decode_cursor, encode_cursor, load_json
from feedbackloop.http.batch import parse_one_or_many
from feedbackloop.http.json_input import MAX_DEPTH

HOSTILE = {
    "list nested 10,000 deep": b"[" * 10_000 + b"]" * 10_000,
    "object nested 10,000 deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "unclosed 100,000 deep": b"[" * 100_000,
    "one level past the cap": b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
    "5,000-digit integer": b'{"text": "hi", "n": ' + b"9" * 5_000 + b"}",
    "5,000-digit negative integer": b"[-" + b"1" * 5_000 + b"]",
    "float out of range": b'{"mrr": 1e999}',
    "NaN": b'{"mrr": NaN}',
    "-Infinity": b"[-Infinity]",
    "not UTF-8": b'{"text": "\xff\xfe"}',
    "syntax error": b'{"text": ',
    "empty": b"",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_load_json_refuses_hostile_documents_with_invalid_json_only(name: str) -> None:
    with pytest.raises(InvalidJson) as refused:
        load_json(HOSTILE[name])
    assert str(refused.value)


def test_load_json_names_why() -> None:
    def why(data: bytes) -> str:
        with pytest.raises(InvalidJson) as refused:
            load_json(data)
        return str(refused.value)

    assert why(HOSTILE["list nested 10,000 deep"]) == "nested too deeply"
    assert why(HOSTILE["one level past the cap"]) == f"nested deeper than {MAX_DEPTH} levels"
    assert why(HOSTILE["5,000-digit integer"]) == "a number has more than 4300 digits"
    assert why(HOSTILE["float out of range"]) == "the number 1e999 is out of range"
    assert why(HOSTILE["NaN"]) == "NaN is not a JSON number"


def test_load_json_takes_what_json_takes_up_to_the_caps() -> None:
    at_cap = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_json(at_cap) == json.loads(at_cap)
    wide = {"items": [{"text": f"item {i}", "tags": ["a", "b"], "customer": {"mrr": 1.5}} for i in range(2000)]}
    assert load_json(json.dumps(wide).encode()) == wide
    assert load_json(b"[" + b"9" * 4_300 + b"]") == [int("9" * 4_300)]
    assert load_json('{"s": "[[[[{{{{", "x": -1.5e300}') == {"s": "[[[[{{{{", "x": -1.5e300}
    assert load_json(b"3") == 3


class _Item(BaseModel):
    text: str


@pytest.mark.parametrize("name", list(HOSTILE))
def test_parse_one_or_many_answers_each_hostile_body_with_a_400_naming_the_body(name: str) -> None:
    with pytest.raises(MalformedJson) as refused:
        parse_one_or_many(HOSTILE[name], TypeAdapter(_Item), max_items=10, noun="item")
    problem = refused.value
    assert problem.status == 400 and problem.title == "Malformed JSON"
    assert problem.errors is not None and problem.errors[0]["field"] == "body" and problem.errors[0]["message"]


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("raw", [b"[" * 10_000 + b"]" * 10_000, b"[" + b"9" * 5_000 + b", 1]", b'[[1], "id"]',
                                 b"[1e999, 1]", b"[NaN, 1]", b"\xff\xfe", b"[1, 2, 3]"])
def test_a_hostile_cursor_is_a_400_naming_the_cursor(raw: bytes) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_cursor(_cursor(raw), 2)
    assert refused.value.status == 400
    assert refused.value.errors == [{"field": "cursor", "message": "malformed cursor"}]


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(["2026-01-02T03:04:05+00:00", 41]), 2) == ["2026-01-02T03:04:05+00:00", 41]
