"""Tracker issues (GitHub Issues, Jira Cloud, Linear): their one name across the system, and their clients.

:mod:`~feedbackloop.trackers.keys` — ``issue_key``: ``github:acme/web#42``, ``jira:AUTH-7``, ``linear:ENG-12``,
from a URL or a key as a person types it. Pure.

:func:`tracker_client` — a :class:`TrackerClient` (``create_issue`` idempotent by marker, ``get_issue``) from
:class:`TrackerSettings` (``TRACKER_*``) and an ``httpx.AsyncClient`` the caller owns. Failures are
:class:`TrackerError` (``retryable``, ``retry_after``); the clients never retry by themselves.
"""

from feedbackloop.trackers.adf import markdown_to_adf
from feedbackloop.trackers.base import (
    IssueDraft,
    TrackerClient,
    TrackerError,
    TrackerIssue,
    TrackerNotConfigured,
    github_status,
    jira_status,
    linear_status,
    marker_comment,
    marker_label,
    parse_retry_after,
)
from feedbackloop.trackers.clients import configured_trackers, tracker_client
from feedbackloop.trackers.github import GitHubClient
from feedbackloop.trackers.jira import JiraClient
from feedbackloop.trackers.keys import InvalidIssueRef, IssueRef, github_key, parse_issue_ref
from feedbackloop.trackers.linear import LinearClient
from feedbackloop.trackers.settings import TrackerSettings

__all__ = [
    "GitHubClient",
    "InvalidIssueRef",
    "IssueDraft",
    "IssueRef",
    "JiraClient",
    "LinearClient",
    "TrackerClient",
    "TrackerError",
    "TrackerIssue",
    "TrackerNotConfigured",
    "TrackerSettings",
    "configured_trackers",
    "github_key",
    "github_status",
    "jira_status",
    "linear_status",
    "markdown_to_adf",
    "marker_comment",
    "marker_label",
    "parse_issue_ref",
    "parse_retry_after",
    "tracker_client",
]
