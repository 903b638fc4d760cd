"""Fuzzing each connector's payload mapping with hypothesis: the vendor payloads with fields removed, retyped and
garbled (the project's own fixtures, tests/fixtures/webhooks/; and, as the ``handed_data`` tier, the real payloads
in ../shared/fixtures/webhooks/), and fully random JSON. ``map`` must never raise: it returns items that
validate and normalize (redaction included) and tracker changes that validate, or an ``ignored`` reason the
router answers 202 with, or a handshake reply. Each connector gets ``MUTATED`` + ``RANDOM`` examples
(``--hypothesis-show-statistics`` prints the counts); in CI (``CI`` set) the examples are derandomized so a run
is repeatable.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedbackloop.contracts import TrackerChange
from feedbackloop_testing import handed_data
from ingest.domain.connectors import CONNECTORS, ConnectorOptions, Delivery, Outcome
from ingest.domain.feedback import FeedbackIn, RedactionPolicy, normalize
from ingest.domain.pseudonym import Pseudonymizer

MUTATED = 120
RANDOM = 60
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OPTIONS = ConnectorOptions(github_repositories=frozenset({"octo-org/octo-repo"}), slack_channels=frozenset())
POLICY = RedactionPolicy(Pseudonymizer(b"fuzz-pseudonym-key-0123456789"))
FUZZ = settings(deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# The headers that choose an event for vendors that name it outside the body.
EVENT_HEADERS = {
    "github": ("x-github-event", ["issues", "issue_comment", "discussion", "ping", "push", ""]),
    "helpscout": ("x-helpscout-event", ["convo.created", "convo.customer.reply.created", "satisfaction.ratings",
                                        "helpscout.test", "convo.deleted", ""]),
}
STANDARD_SEED = {"source": "api", "external_id": "42", "text": "Checkout crashes on iOS",
                 "author": {"email": "a@example.com"}, "rating": {"kind": "nps", "value": 3}}
OWN = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
# The handed payloads cover every vendor connector but the trackers Jira and Linear (none were handed).
HANDED_SOURCES = sorted(set(CONNECTORS) - {"standard", "jira", "linear"})


def _read(folder: Path) -> list[Any]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


@cache
def own_seeds(source: str) -> list[Any]:
    """The project's own fixtures of ``source`` (and, for Standard Webhooks, a hand-made item and list)."""
    extra = [STANDARD_SEED, [STANDARD_SEED, STANDARD_SEED]] if source == "standard" else []
    return _read(OWN / source) + extra


@cache
def handed_seeds(source: str) -> list[Any]:
    """The real payloads of ``source`` handed to the project (read inside ``handed_data`` tests only)."""
    return _read(Path(handed_data(f"fixtures/webhooks/{source}")))

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40) | st.sampled_from(
    ["", " ", "0", "-1", "1e400", "2024-13-45T99:99:99Z", "1700000000000", "<p>hi</p>", "a@b.c", "true", "null"]
)
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=4), max_leaves=20)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _mutate(value: Any, path: tuple[Any, ...], op: str, replacement: Any, garble: str) -> Any:
    if not path:
        if op == "remove":
            return None
        if op == "garble" and isinstance(value, str):
            return garble + value[len(garble):]
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if not rest and op == "remove":
            copy.pop(head, None)
        else:
            copy[head] = _mutate(copy[head], rest, op, replacement, garble)
        return copy
    copy_list = list(value)
    if not rest and op == "remove":
        del copy_list[head]
    else:
        copy_list[head] = _mutate(copy_list[head], rest, op, replacement, garble)
    return copy_list


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    payload = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        paths = _paths(payload)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["remove", "retype", "garble"]))
        payload = _mutate(payload, path, op, draw(any_json), draw(st.text(min_size=1, max_size=8)))
    return payload


def _check(source: str, payload: Any, headers: dict[str, str]) -> None:
    body = json.dumps(payload).encode()
    delivery = Delivery(headers=headers, body=body, received_at=NOW)
    outcome = CONNECTORS[source].map(payload, delivery, OPTIONS)
    assert isinstance(outcome, Outcome)
    if outcome.reply is not None:
        return
    for change in outcome.changes:
        assert isinstance(change, TrackerChange)
        TrackerChange.model_validate(change.model_dump())  # what the outbox publishes re-validates
    if not outcome.items and not outcome.changes:
        assert isinstance(outcome.ignored, str) and outcome.ignored.strip(), "an ignored payload needs a reason"
        return
    for item in outcome.items:
        assert isinstance(item, FeedbackIn)
        FeedbackIn.model_validate(item.model_dump())  # what the store keeps re-validates
        raw = normalize(item, NOW, POLICY)
        assert raw.text.strip() and raw.source == item.source


def _headers(draw: st.DrawFn, source: str) -> dict[str, str]:
    if source not in EVENT_HEADERS:
        return {}
    name, values = EVENT_HEADERS[source]
    return {name: draw(st.sampled_from(values) | st.text(max_size=20))}


@pytest.mark.parametrize("source", sorted(CONNECTORS))
@settings(FUZZ, max_examples=MUTATED)
@given(data=st.data())
def test_mutated_vendor_payloads_never_crash_the_mapper(source: str, data: st.DataObject) -> None:
    payload = data.draw(mutated(own_seeds(source)), label="payload")
    _check(source, payload, data.draw(st.composite(lambda d: _headers(d, source))(), label="headers"))


@pytest.mark.handed_data
@pytest.mark.parametrize("source", HANDED_SOURCES)
@settings(FUZZ, max_examples=MUTATED)
@given(data=st.data())
def test_mutated_real_payloads_never_crash_the_mapper(source: str, data: st.DataObject) -> None:
    payload = data.draw(mutated(handed_seeds(source)), label="payload")
    _check(source, payload, data.draw(st.composite(lambda d: _headers(d, source))(), label="headers"))


@pytest.mark.parametrize("source", sorted(CONNECTORS))
@settings(FUZZ, max_examples=RANDOM)
@given(data=st.data())
def test_random_json_never_crashes_the_mapper(source: str, data: st.DataObject) -> None:
    payload = data.draw(any_json, label="payload")
    _check(source, payload, data.draw(st.composite(lambda d: _headers(d, source))(), label="headers"))
