"""The one name of a tracker issue across the system (``tracker.v1``'s ``issue_key``), from a URL or a key. Pure.

    github:<owner>/<repo>#<number>   owner and repository lower-cased (GitHub treats them case-insensitively)
    jira:<PROJECT-123>               the issue key, upper-cased
    linear:<TEAM-123>                the issue identifier, upper-cased

Accepted as input (:func:`parse_issue_ref`): those keys, and the issue pages people paste —
``https://github.com/acme/web/issues/42``, ``https://acme.atlassian.net/browse/AUTH-7`` (also
``…/jira/software/projects/AUTH/issues/AUTH-7`` and ``?selectedIssue=AUTH-7``), ``https://linear.app/acme/issue/ENG-12/slug``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from feedbackloop.contracts.events import TrackerName

__all__ = ["InvalidIssueRef", "IssueRef", "github_key", "jira_key", "linear_key", "parse_issue_ref"]

_GITHUB_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})"
_GITHUB_KEY = re.compile(rf"^github:({_GITHUB_NAME})/({_GITHUB_NAME})#([1-9][0-9]{{0,9}})$", re.IGNORECASE)
_ISSUE_ID = re.compile(r"^([A-Za-z][A-Za-z0-9_]{0,49})-([1-9][0-9]{0,9})$")
_GITHUB_PATH = re.compile(rf"^/({_GITHUB_NAME})/({_GITHUB_NAME})/(?:issues|pull)/([1-9][0-9]{{0,9}})/?$")
_JIRA_PATH = re.compile(r"/(?:browse|issues)/([A-Za-z][A-Za-z0-9_]{0,49}-[1-9][0-9]{0,9})/?$")
_LINEAR_PATH = re.compile(r"^/[^/]+/issue/([A-Za-z][A-Za-z0-9_]{0,49}-[1-9][0-9]{0,9})(?:/[^/]*)?/?$")


class InvalidIssueRef(ValueError):
    """Not a tracker issue this system knows how to name; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class IssueRef:
    """A tracker issue: its tracker, its key (``tracker.v1``'s ``issue_key``) and, when given, its page."""

    tracker: TrackerName
    key: str
    url: str | None = None

    @property
    def local_id(self) -> str:
        """The issue's name inside its tracker: ``acme/web#42``, ``AUTH-7``, ``ENG-12``."""
        return self.key.split(":", 1)[1]


def github_key(repository: str, number: int | str) -> str:
    """``github_key("Acme/Web", 42) == "github:acme/web#42"``."""
    return f"github:{repository.lower()}#{int(number)}"


def jira_key(issue: str) -> str:
    return f"jira:{issue.upper()}"


def linear_key(identifier: str) -> str:
    return f"linear:{identifier.upper()}"


def parse_issue_ref(text: str) -> IssueRef:
    """The issue a key or a pasted URL names; :class:`InvalidIssueRef` says what is accepted otherwise."""
    value = text.strip()
    if value.lower().startswith(("http://", "https://")):
        return _from_url(value)
    tracker, _, rest = value.partition(":")
    tracker = tracker.lower()
    if tracker == "github" and (m := _GITHUB_KEY.match(value)):
        return IssueRef("github", github_key(f"{m[1]}/{m[2]}", m[3]), f"https://github.com/{m[1]}/{m[2]}/issues/{m[3]}")
    if tracker in ("jira", "linear") and _ISSUE_ID.match(rest):
        return IssueRef(tracker, jira_key(rest) if tracker == "jira" else linear_key(rest))  # type: ignore[arg-type]
    raise InvalidIssueRef(
        f"{text[:200]!r} names no tracker issue: give its URL (github.com/<owner>/<repo>/issues/<n>, "
        "<site>.atlassian.net/browse/<KEY-n>, linear.app/<team>/issue/<KEY-n>) or a key "
        "(github:<owner>/<repo>#<n>, jira:<KEY-n>, linear:<KEY-n>)")


def _from_url(url: str) -> IssueRef:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidIssueRef(f"{url[:200]!r} is not a URL") from None
    host = (parts.hostname or "").lower()
    if host in ("github.com", "www.github.com") and (m := _GITHUB_PATH.match(parts.path)):
        return IssueRef("github", github_key(f"{m[1]}/{m[2]}", m[3]), url)
    if host.endswith(".atlassian.net") or host.startswith("jira."):
        selected = parse_qs(parts.query).get("selectedIssue", [""])[0]
        if _ISSUE_ID.match(selected):
            return IssueRef("jira", jira_key(selected), url)
        if m := _JIRA_PATH.search(parts.path):
            return IssueRef("jira", jira_key(m[1]), url)
    if host == "linear.app" and (m := _LINEAR_PATH.match(parts.path)):
        return IssueRef("linear", linear_key(m[1]), url)
    raise InvalidIssueRef(
        f"{url[:200]!r} is not an issue page of GitHub (github.com/<owner>/<repo>/issues/<n>), Jira Cloud "
        "(<site>.atlassian.net/browse/<KEY-n>) or Linear (linear.app/<team>/issue/<KEY-n>)")
