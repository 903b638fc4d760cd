"""Tracker issues (GitHub Issues, Jira Cloud, Linear): their one name across the system, and their clients.

:mod:`~feedbackloop.trackers.keys` — ``issue_key``: ``github:acme/web#42``, ``jira:AUTH-7``, ``linear:ENG-12``,
from a URL or a key as a person types it. Pure.
"""

from feedbackloop.trackers.keys import InvalidIssueRef, IssueRef, github_key, parse_issue_ref

__all__ = ["InvalidIssueRef", "IssueRef", "github_key", "parse_issue_ref"]
