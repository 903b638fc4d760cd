"""Redaction's fast paths skip only work that cannot change the result: the same texts come out with every pass
forced to run, and the facts about libphonenumber's matcher the phone gates rest on hold for the installed one."""

from __future__ import annotations

import random
import re
import string
from collections.abc import Iterator

import phonenumbers.phonenumbermatcher as matcher
import pytest

from ingest.domain import phones
from ingest.domain import redact as redaction
from ingest.domain.phones import PHONE_TRIES
from ingest.domain.redact import redact

_PIECES = [
    "sk_live_", "ghp_", "xoxb-", "AKIA", "AIza", "eyJ", "sk-", "glpat-", "npm_", "xapp-", "SG.", "github_pat_", "AC",
    "SK", "whsec_", "-----BEGIN ", "PRIVATE KEY-----", "-----END ", "Bearer ", "api_key", "token", "secret", "password",
    ":", "=", "@", "example.com", "DE89", "de89", "3704", "0044", "0532", "0130", "00", "GB82", "WEST", "1234", "5678",
    "4111", "1111", "+44", "+1", "(", ")", "020", "7946", "0958", "030", "1640", "0164", "12", "Main", "Street", "St",
    "rue", "de", "Rivoli", "Hauptstraße", "192.168", ".1", ".", "fe80", "::", "abcd", "0x", "\u0663", "\uff14", "-",
    " ", "  ", "\t", "/", "x", "ext", "\n", "\u00a0", "05.03.2024", "#", ",", "Apt", "Suite", "200", "9", "8", "7",
]


def _texts(n: int, seed: int = 3) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(n):
        yield "".join(rng.choice(_PIECES) + rng.choice(["", "", " ", "-", ".", "x"]) for _ in range(rng.randint(1, 14)))
        yield "".join(rng.choice(string.digits + " -./()+") for _ in range(rng.randint(1, 40)))
    yield "Checkout fails after the update, order #10234.567 and #10234.056, call 0164 0 or 020 7946 0958"


def _every_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every gate open: each pass runs on every text, as before the fast paths."""
    anything = re.compile(r"")
    for hint in ("_DIGIT", "_IBAN_HINT", "_CARD_HINT", "_ADDRESS_HINT", "_IPV4_HINT", "_IPV6_HINT"):
        monkeypatch.setattr(redaction, hint, anything)
    monkeypatch.setattr(redaction, "_secret_pattern", lambda text: redaction._SECRET)
    monkeypatch.setattr(phones, "_phone_digit_group", lambda regions: anything)
    monkeypatch.setattr(phones, "_tries_bound", lambda text: PHONE_TRIES)


@pytest.mark.parametrize("regions", [("US", "GB", "DE", "FR"), ("DE",), ("GB", "FR"), ("NU", "DE")])
def test_fast_paths_give_what_every_pass_gives(regions: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    texts = list(_texts(400))
    fast = [redaction._redact(t, regions) for t in texts]
    _every_pass(monkeypatch)
    slow = [redaction._redact(t, regions) for t in texts]
    for text, a, b in zip(texts, fast, slow, strict=True):
        assert (a.text, dict(a.counts)) == (b.text, dict(b.counts)), text


def test_cached_results_are_fresh_copies() -> None:
    first = redact("mail jane@example.com")
    first.counts["email"] += 5
    again = redact("mail jane@example.com")
    assert again.text == "mail [EMAIL]" and again.counts == {"email": 1}


def test_the_matcher_facts_the_phone_gates_rest_on() -> None:
    """Candidates: digit blocks joined by at most 4 punctuation characters, starting at a digit or a lead
    character, cut inside a run of digits only after 6 or more of them; inner groups start at the separators
    counted by ``_tries_bound``. Should an upgrade change these, the gates must be looked at again."""
    assert matcher._PUNCTUATION_LIMIT == "{0,4}"
    assert min(int(n) for n in re.findall(r"\\d\{1,(\d+)\}", matcher._PATTERN.pattern)) >= 6
    assert all(phones._TRY_START.match(c) for c in matcher._LEAD_CLASS_CHARS if c != "\\")
    assert [p.pattern for p in matcher._INNER_MATCHES] == [
        "/+(.*)", "(\\([^(]*)", "(?u)(?:\\s-|-\\s)\\s*(.+)", "(?u)[\u2012-\u2015\uFF0D]\\s*(.+)",
        "(?u)\\.+\\s*([^.]+)", "(?u)\\s+(\\S+)",
    ]


def test_shortest_number_follows_the_regions() -> None:
    assert phones._shortest_number(("US",)) == 6  # with its country code; US national numbers have 10
    assert phones._shortest_number(("US", "DE")) == 5  # German numbers of 4 digits, written with their 0
    assert phones._shortest_number(("NU",)) == 4
