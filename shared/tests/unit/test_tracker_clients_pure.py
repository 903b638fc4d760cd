"""The pure parts of the tracker clients: ADF, status words, Retry-After, markers, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from feedbackloop.trackers import (
    IssueDraft,
    TrackerNotConfigured,
    TrackerSettings,
    github_status,
    jira_status,
    linear_status,
    markdown_to_adf,
    marker_comment,
    marker_label,
    parse_retry_after,
    tracker_client,
)
from feedbackloop.trackers.base import parse_timestamp
from feedbackloop_testing.standins.jira import valid_adf


def test_adf_paragraphs_lists_and_links() -> None:
    doc = markdown_to_adf("Users say it fails.\nSee [the log](https://ex.com/log).\n\n- first **bold**\n- second "
                          "https://ex.com/a.\n\n1. one\n2. two\n\n<!-- feedbackloop:abc -->")
    assert doc["type"] == "doc" and doc["version"] == 1 and valid_adf(doc)
    para, bullets, ordered = doc["content"]
    assert [n["type"] for n in para["content"]] == ["text", "hardBreak", "text", "text", "text"]
    assert para["content"][3] == {"type": "text", "text": "the log",
                                  "marks": [{"type": "link", "attrs": {"href": "https://ex.com/log"}}]}
    assert bullets["type"] == "bulletList" and len(bullets["content"]) == 2
    first = bullets["content"][0]["content"][0]["content"]
    assert first[1] == {"type": "text", "text": "bold", "marks": [{"type": "strong"}]}
    second = bullets["content"][1]["content"][0]["content"]
    assert second[1]["text"] == "https://ex.com/a" and second[2]["text"] == "."  # the full stop is not in the link
    assert ordered["type"] == "orderedList" and ordered["attrs"] == {"order": 1}
    assert "feedbackloop" not in str(doc)  # comments are dropped


def test_adf_headings_code_and_empty() -> None:
    doc = markdown_to_adf("# Title\n\n```\nx = 1\n```\n")
    assert doc["content"][0] == {"type": "heading", "attrs": {"level": 1},
                                 "content": [{"type": "text", "text": "Title"}]}
    assert doc["content"][1] == {"type": "codeBlock", "content": [{"type": "text", "text": "x = 1"}]}
    assert markdown_to_adf("") == {"type": "doc", "version": 1, "content": []}
    assert valid_adf(markdown_to_adf("")) and valid_adf(doc)


def test_the_stand_in_rejects_what_is_not_adf() -> None:
    assert not valid_adf({"type": "doc", "version": 2, "content": []})
    assert not valid_adf({"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
        {"type": "text", "text": ""}]}]})
    assert not valid_adf("plain text")


@pytest.mark.parametrize(("state", "reason", "expected"), [
    ("open", None, "open"), ("open", "reopened", "open"), ("closed", "completed", "done"), ("closed", None, "done"),
    ("closed", "not_planned", "cancelled")])
def test_github_status(state: str, reason: str | None, expected: str) -> None:
    assert github_status(state, reason) == expected


@pytest.mark.parametrize(("category", "resolution", "expected"), [
    ("new", None, "open"), ("indeterminate", None, "in_progress"), ("done", "Done", "done"), ("done", None, "done"),
    ("done", "Won't Do", "cancelled"), ("done", "Duplicate", "cancelled"), ("done", "Cannot Reproduce", "cancelled"),
    ("done", "Declined", "cancelled"), ("done", "Fixed", "done")])
def test_jira_status(category: str, resolution: str | None, expected: str) -> None:
    assert jira_status(category, resolution) == expected


@pytest.mark.parametrize(("kind", "expected"), [
    ("backlog", "open"), ("unstarted", "open"), ("triage", "open"), ("started", "in_progress"),
    ("completed", "done"), ("canceled", "cancelled"), (None, "open")])
def test_linear_status(kind: str | None, expected: str) -> None:
    assert linear_status(kind) == expected


def test_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None and parse_retry_after(" ") is None


def test_markers() -> None:
    assert marker_comment("5f0c-1") == "<!-- feedbackloop:5f0c-1 -->"
    assert marker_label("5f0c-1") == "feedbackloop-5f0c-1"
    for bad in ("", "a b", "x-->", "a" * 101, "-leading"):
        with pytest.raises(ValueError, match="marker"):
            IssueDraft(target="acme/web", title="t", body="", marker=bad)
    with pytest.raises(ValueError, match="title"):
        IssueDraft(target="acme/web", title=" ", body="", marker="m")


def test_timestamps_of_every_tracker() -> None:
    expected = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_timestamp("2026-01-02T03:04:05Z") == expected
    assert parse_timestamp("2026-01-02T03:04:05.000+0000") == expected
    assert parse_timestamp("2026-01-02T03:04:05+00:00") == expected
    assert parse_timestamp("yesterday") is None and parse_timestamp(None) is None


def test_unconfigured_trackers_name_their_variables() -> None:
    settings = TrackerSettings(_env_file=None, jira_url="https://acme.atlassian.net")  # type: ignore[call-arg]
    with pytest.raises(TrackerNotConfigured, match="TRACKER_GITHUB_TOKEN"):
        tracker_client("github", settings, None)  # type: ignore[arg-type]
    with pytest.raises(TrackerNotConfigured, match="TRACKER_JIRA_EMAIL, TRACKER_JIRA_TOKEN") as caught:
        tracker_client("jira", settings, None)  # type: ignore[arg-type]
    assert not caught.value.retryable and "TRACKER_JIRA_URL" not in str(caught.value)
    with pytest.raises(TrackerNotConfigured, match="TRACKER_LINEAR_API_KEY"):
        tracker_client("linear", settings, None)  # type: ignore[arg-type]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_GITHUB_TOKEN", "ghp_x")
    monkeypatch.setenv("TRACKER_TIMEOUT_SECONDS", "3")
    settings = TrackerSettings()
    assert settings.github_token is not None and settings.github_token.get_secret_value() == "ghp_x"
    assert settings.timeout_seconds == 3 and "ghp_x" not in repr(settings)
