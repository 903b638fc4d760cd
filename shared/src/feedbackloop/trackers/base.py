"""What every tracker client takes and gives, and how it fails. Pure: no I/O here.

Errors::

    TrackerError                 a tracker call failed; ``retryable`` says whether the same call may succeed later
     └── TrackerNotConfigured    the tracker's TRACKER_* variables are not set (never retryable)

A retryable error (429, 5xx, a connection error or a timeout) carries ``retry_after`` when the tracker said how
long to wait. The clients never retry by themselves: the callers have their own schedules. No message ever holds a
credential.

Exactly once: the caller chooses a ``marker`` (a link or delivery uuid) and the client writes it into the issue
(:func:`marker_comment` in GitHub and Linear bodies, :func:`marker_label` as a Jira label); ``create_issue`` first
looks for an issue carrying it, so a retry after a lost answer returns the issue already made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from feedbackloop.contracts.events import IssueStatus, TrackerName
from feedbackloop.trackers.keys import IssueRef

__all__ = [
    "IssueDraft",
    "TrackerClient",
    "TrackerError",
    "TrackerIssue",
    "TrackerNotConfigured",
    "github_status",
    "jira_status",
    "linear_status",
    "marker_comment",
    "marker_label",
    "parse_retry_after",
]

_MARKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
#: Jira resolutions that close an issue without a fix.
CANCELLED_RESOLUTIONS = frozenset({"won't do", "wont do", "won't fix", "duplicate", "cannot reproduce", "declined"})


@dataclass(frozen=True)
class IssueDraft:
    """An issue to create. ``target`` is a GitHub ``owner/repo``, a Jira project key (``AUTH``) or a Linear team
    key (``ENG``); ``body`` is Markdown (converted to Atlassian Document Format for Jira). ``marker`` makes the
    creation idempotent: letters, digits and ``._:-``, at most 100 (a uuid fits)."""

    target: str
    title: str
    body: str
    marker: str
    labels: tuple[str, ...] = ()
    issue_type: str = "Bug"  # Jira only

    def __post_init__(self) -> None:
        if not _MARKER.match(self.marker):
            raise ValueError(f"marker {self.marker[:120]!r}: letters, digits and ._:- only, at most 100")
        if not self.title.strip():
            raise ValueError("an issue needs a title")
        if not self.target.strip():
            raise ValueError("an issue needs a target (GitHub owner/repo, Jira project key or Linear team key)")


@dataclass(frozen=True)
class TrackerIssue:
    """An issue as its tracker holds it: its one name (``ref.key``) and page (``ref.url``), title and state."""

    ref: IssueRef
    title: str
    status: IssueStatus
    created_at: datetime | None = None


class TrackerError(Exception):
    """A tracker call failed. ``status`` is the HTTP status when there was an answer; ``retryable`` says whether
    the same call may work later (then ``retry_after`` is the wait the tracker asked for, in seconds, if any)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class TrackerNotConfigured(TrackerError):
    """The tracker cannot be called: the message names the TRACKER_* variables to set."""

    def __init__(self, tracker: str, missing: list[str]) -> None:
        super().__init__(f"{tracker} is not configured: set {', '.join(missing)}", retryable=False)
        self.missing = tuple(missing)


class TrackerClient(Protocol):
    """One tracker. Both calls raise :class:`TrackerError` (``retryable`` set for 429, 5xx and network errors)."""

    @property
    def tracker(self) -> TrackerName: ...

    async def create_issue(self, draft: IssueDraft) -> TrackerIssue:
        """The issue carrying ``draft.marker`` if one exists, else a new one: calling it twice makes one issue."""
        ...

    async def get_issue(self, ref: IssueRef) -> TrackerIssue:
        """Title and state of an existing issue (404 → a non-retryable :class:`TrackerError`)."""
        ...


def marker_comment(marker: str) -> str:
    """The marker as GitHub and Linear bodies carry it (invisible once rendered)."""
    return f"<!-- feedbackloop:{marker} -->"


def marker_label(marker: str) -> str:
    """The marker as a Jira label (labels hold no spaces)."""
    return f"feedbackloop-{marker}"


def github_status(state: str, state_reason: str | None) -> IssueStatus:
    if state == "open":
        return "open"
    return "cancelled" if state_reason == "not_planned" else "done"


def jira_status(category: str | None, resolution: str | None) -> IssueStatus:
    """From the status category key (``new``, ``indeterminate``, ``done``) and the resolution's name."""
    if category == "done":
        return "cancelled" if (resolution or "").strip().lower() in CANCELLED_RESOLUTIONS else "done"
    return "in_progress" if category == "indeterminate" else "open"


def linear_status(state_type: str | None) -> IssueStatus:
    """From a workflow state's type: backlog, unstarted, triage, started, completed, canceled."""
    return _LINEAR_STATUS.get(state_type or "", "open")


_LINEAR_STATUS: dict[str, IssueStatus] = {"started": "in_progress", "completed": "done", "canceled": "cancelled"}


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay-seconds or an HTTP date (a past date gives 0)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_timestamp(value: object) -> datetime | None:
    """An ISO 8601 time as the trackers write it (``…Z``, ``…+00:00``, Jira's ``….000+0000``), else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
