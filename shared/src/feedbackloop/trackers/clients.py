"""The client of a tracker, built from :class:`TrackerSettings`; an unconfigured tracker says what to set."""

from __future__ import annotations

import httpx

from feedbackloop.contracts.events import TrackerName
from feedbackloop.trackers.base import TrackerClient, TrackerNotConfigured
from feedbackloop.trackers.github import GitHubClient
from feedbackloop.trackers.jira import JiraClient
from feedbackloop.trackers.linear import LinearClient
from feedbackloop.trackers.settings import TrackerSettings

__all__ = ["configured_trackers", "tracker_client"]


def tracker_client(tracker: TrackerName, settings: TrackerSettings, http: httpx.AsyncClient) -> TrackerClient:
    """The client of ``tracker`` over ``http`` (the caller owns it); :class:`TrackerNotConfigured` names the
    TRACKER_* variables missing."""
    if tracker == "github":
        if settings.github_token is None:
            raise TrackerNotConfigured("github", ["TRACKER_GITHUB_TOKEN"])
        return GitHubClient(http, token=settings.github_token.get_secret_value(), api_url=settings.github_api_url,
                            timeout=settings.timeout_seconds)
    if tracker == "jira":
        missing = [name for name, value in (("TRACKER_JIRA_URL", settings.jira_url),
                                            ("TRACKER_JIRA_EMAIL", settings.jira_email),
                                            ("TRACKER_JIRA_TOKEN", settings.jira_token)) if not value]
        if missing or settings.jira_url is None or settings.jira_email is None or settings.jira_token is None:
            raise TrackerNotConfigured("jira", missing)
        return JiraClient(http, url=settings.jira_url, email=settings.jira_email,
                          token=settings.jira_token.get_secret_value(), timeout=settings.timeout_seconds)
    if tracker == "linear":
        if settings.linear_api_key is None:
            raise TrackerNotConfigured("linear", ["TRACKER_LINEAR_API_KEY"])
        return LinearClient(http, api_key=settings.linear_api_key.get_secret_value(), api_url=settings.linear_api_url,
                            timeout=settings.timeout_seconds)
    raise TrackerNotConfigured(str(tracker), [f"a known tracker (github, jira, linear), not {tracker!r}"])


def configured_trackers(settings: TrackerSettings) -> list[TrackerName]:
    """The trackers ``settings`` can reach."""
    names: list[TrackerName] = []
    if settings.github_token is not None:
        names.append("github")
    if settings.jira_url and settings.jira_email and settings.jira_token is not None:
        names.append("jira")
    if settings.linear_api_key is not None:
        names.append("linear")
    return names
