"""Quiet hours, insight episodes, digests and the Slack/email rendering: pure domain, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notification.domain.errors import RuleInvalid
from notification.domain.messages import build_digest_payload, email_parts, slack_body, summarize
from notification.domain.noise import EpisodeMark, digest_id_for, is_same_episode, parse_quiet_hours
from notification.domain.rules import parse_throttle


def test_quiet_hours_wrap_midnight_in_the_teams_zone() -> None:
    hours = parse_quiet_hours({"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"})
    assert hours is not None
    winter_evening = datetime(2026, 1, 10, 21, 30, tzinfo=UTC)  # 22:30 in Berlin
    assert hours.until(winter_evening) == datetime(2026, 1, 11, 6, 0, tzinfo=UTC)
    assert hours.until(datetime(2026, 1, 11, 5, 0, tzinfo=UTC)) == datetime(2026, 1, 11, 6, 0, tzinfo=UTC)
    assert hours.until(datetime(2026, 1, 11, 12, 0, tzinfo=UTC)) is None


@pytest.mark.parametrize(("raw", "field"), [
    ({"start": "25:00", "end": "07:00"}, "quiet_hours.start"),
    ({"start": "22:00", "end": "7"}, "quiet_hours.end"),
    ({"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}, "quiet_hours.timezone"),
])
def test_bad_quiet_hours_are_named(raw: dict[str, str], field: str) -> None:
    with pytest.raises(RuleInvalid) as caught:
        parse_quiet_hours(raw)
    assert caught.value.errors[0]["field"] == field


def test_throttle_parses_and_names_bad_keys() -> None:
    assert parse_throttle({"limit": 5, "window_s": 60}) is not None
    with pytest.raises(RuleInvalid) as caught:
        parse_throttle({"limit": "5", "window_s": 0, "burst": 1})
    assert {e["field"] for e in caught.value.errors} == {"throttle", "throttle.limit", "throttle.window_s"}


def test_insight_episodes_repeat_once_unless_severity_rises() -> None:
    end = datetime(2026, 1, 1, 12, tzinfo=UTC)
    mark = EpisodeMark(window_to=end, severity="warning")
    assert is_same_episode(mark, end + timedelta(minutes=30), "warning", 3600)
    assert not is_same_episode(mark, end + timedelta(hours=2), "warning", 3600), "a new episode after the gap"
    assert not is_same_episode(mark, end, "critical", 3600), "an escalation is news"
    assert not is_same_episode(None, end, "info", 3600)


def test_digest_ids_are_deterministic() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert digest_id_for("r", 0, "throttle", at) == digest_id_for("r", 0, "throttle", at)
    assert digest_id_for("r", 0, "throttle", at) != digest_id_for("r", 1, "throttle", at)


INSIGHT = {"type": "insight", "rule": {"id": "r1", "name": "spikes", "team": "payments"}, "event_id": "e1",
           "data": {"type": "spike", "title": "Checkout complaints tripled", "theme": "checkout",
                    "severity": "critical", "metrics": {"observed": 30, "expected": 10.5, "ratio": 2.857},
                    "window": {"from": "2026-01-01T10:00:00Z", "to": "2026-01-01T11:00:00Z"},
                    "quotes": ["Pay button <does nothing>", {"text": "Card declined"}, "x", "a fourth"]}}


def test_a_customer_cannot_mention_a_channel_or_disguise_a_link_in_the_slack_text() -> None:
    title = "<!channel> refund at <https://evil.example|your bank> & co"
    spoofed = {**INSIGHT, "data": {**INSIGHT["data"], "title": title}}
    body = slack_body(summarize(spoofed, "http://127.0.0.1:8003/"))
    assert "<" not in body["text"] and ">" not in body["text"]
    assert body["text"] == "[critical] &lt;!channel&gt; refund at &lt;https://evil.example|your bank&gt; &amp; co"


def test_slack_message_has_title_colour_numbers_three_quotes_and_link() -> None:
    body = slack_body(summarize(INSIGHT, "http://127.0.0.1:8003/"))
    assert body["text"] == "[critical] Checkout complaints tripled"
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#D92D20"
    blocks = attachment["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Checkout complaints tripled",
                                                    "emoji": True}}
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*Observed*\n30" in fields and "*Expected*\n10.5" in fields and "*Theme*\ncheckout" in fields
    quotes = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert quotes == ["> Pay button &lt;does nothing&gt;", "> Card declined", "> x"], "three, escaped"
    assert blocks[-1]["elements"][0]["url"] == "http://127.0.0.1:8003/"


def test_digest_and_email_rendering() -> None:
    item = {"type": "feedback", "event_id": "f1", "rule": INSIGHT["rule"],
            "data": {"kind": "bug", "urgency": "critical", "text": "It <script> crashes", "customer": {"id": "acme"}}}
    at = datetime(2026, 1, 1, tzinfo=UTC)
    digest = build_digest_payload(rule=INSIGHT["rule"], reason="throttle", window_from=at, window_to=at,
                                  items=[item, INSIGHT], digest_id="d1")
    assert digest["count"] == 2 and digest["event_ids"] == ["f1", "e1"]
    message = summarize(digest, "http://dash/")
    assert message.title == "Digest: 2 more matches of “spikes”" and message.severity == "critical"
    subject, text, html = email_parts(message)
    assert subject.startswith("[critical] Digest: 2")
    assert "> It <script> crashes" in text and "&lt;script&gt;" in html and "<script>" not in html


def test_a_revised_product_area_spike_stays_the_episode_it_continues() -> None:
    from notification.domain.noise import episode_key

    first = {"type": "spike", "theme": None, "title": "Product area billing: 10 items, ×5.0 the usual",  # noqa: RUF001
             "metrics": {"dimension": "product_area", "key": "billing", "observed": 10}}
    grown = {**first, "title": "Product area billing: 60 items, ×30.0 the usual", "revision": 2,  # noqa: RUF001
             "metrics": {"dimension": "product_area", "key": "billing", "observed": 60}}
    other_area = {**first, "metrics": {"dimension": "product_area", "key": "login", "observed": 10}}
    assert episode_key(grown) == episode_key(first)
    assert episode_key(other_area) != episode_key(first)
    themed = {"type": "spike", "theme": "login", "title": "a", "metrics": {"dimension": "theme", "key": "login"}}
    assert episode_key({**themed, "title": "b"}) == episode_key(themed)
    assert episode_key({"type": "urgent_item", "title": "Data loss"}) != episode_key({"type": "urgent_item",
                                                                                      "title": "Outage"})
