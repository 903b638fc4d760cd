"""Jira Cloud: issue status changes → ``tracker.v1``. Signature: ``X-Hub-Signature: sha256=`` hex HMAC-SHA256 of the
body under the secret the webhook was registered with (Jira signs only webhooks registered with a secret; no
timestamp, so no replay window). No feedback items.

``jira:issue_created`` always, and ``jira:issue_updated`` when its ``changelog.items`` touch ``status`` or
``resolution``, give one change: the status from ``issue.fields.status.statusCategory.key`` (``new`` → open,
``indeterminate`` → in_progress, ``done`` → done, or cancelled when the resolution is one of
``CANCELLING_RESOLUTIONS``). ``previous_status`` comes from the changelog's ``status`` entry: the webhook names the
old status (``fromString``), not its category, so only the statuses of Jira's built-in workflows are known
(``PREVIOUS_STATUS_NAMES``); any other leaves it None. Every other event is ignored with its reason.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from feedbackloop.contracts.events import IssueStatus
from feedbackloop.trackers.keys import InvalidIssueRef, parse_issue_ref
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    Verified,
    as_datetime,
    as_dict,
    as_list,
    build_change,
    dig,
)
from ingest.domain.connectors.hmac_schemes import verify_body_hmac

__all__ = ["CANCELLING_RESOLUTIONS", "PREVIOUS_STATUS_NAMES", "Jira"]

SIGNATURE = "x-hub-signature"
_EVENTS = {"jira:issue_created": "created", "jira:issue_updated": "updated"}
_CATEGORIES: dict[str, IssueStatus] = {"new": "open", "indeterminate": "in_progress", "done": "done"}
#: Resolutions that close an issue without a fix (Jira Cloud's defaults), compared without case.
CANCELLING_RESOLUTIONS = frozenset({"won't do", "won't fix", "duplicate", "cannot reproduce", "declined"})
#: The statuses of Jira's built-in workflows, by name, for ``previous_status`` (the changelog gives no category).
PREVIOUS_STATUS_NAMES: dict[str, IssueStatus] = {
    "to do": "open", "open": "open", "backlog": "open", "selected for development": "open", "reopened": "open",
    "in progress": "in_progress", "in review": "in_progress",
    "done": "done", "closed": "done", "resolved": "done",
}


class Jira:
    source: str = "jira"
    channel: None = None

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(delivery, secret, header=SIGNATURE, algorithm="sha256", encoding="hex", prefix="sha256=")
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        event = dig(payload, "webhookEvent")
        action = _EVENTS.get(event) if isinstance(event, str) else None
        if action is None:
            return Outcome.ignore(f"unsupported Jira event {event!r}")
        issue = as_dict(dig(payload, "issue"))
        key = issue.get("key")
        try:
            ref = parse_issue_ref(f"jira:{key}") if isinstance(key, str) else None
        except InvalidIssueRef:
            ref = None
        if ref is None:
            return Outcome.ignore("the Jira event names no issue key")
        entries = [as_dict(entry) for entry in as_list(dig(payload, "changelog", "items"))]
        status_entry = next((e for e in entries if _lower(e.get("field")) == "status"), None)
        if action == "updated" and status_entry is None and not any(
                _lower(e.get("field")) == "resolution" for e in entries):
            return Outcome.ignore("the update changes neither the issue's status nor its resolution")
        fields = as_dict(issue.get("fields"))
        resolution = dig(fields, "resolution", "name")
        status = _status(dig(fields, "status", "statusCategory", "key"), resolution)
        if status is None:
            return Outcome.ignore("the issue's status has no known category (new, indeterminate, done)")
        change = build_change(
            tracker="jira",
            issue_key=ref.key,
            status=status,
            previous_status=_previous(status_entry, entries),
            action=action,
            resolution=resolution,
            changed_at=as_datetime(dig(payload, "timestamp")) or as_datetime(fields.get("updated"))
            or delivery.received_at,
            url=_browse_url(issue.get("self"), ref.local_id),
            title=fields.get("summary"),
        )
        return Outcome.ignore(change) if isinstance(change, str) else Outcome(changes=[change])


def _lower(value: Any) -> str:
    return value.strip().lower().replace("\u2019", "'") if isinstance(value, str) else ""


def _status(category: Any, resolution: Any) -> IssueStatus | None:
    status = _CATEGORIES.get(_lower(category))
    if status == "done" and _lower(resolution) in CANCELLING_RESOLUTIONS:
        return "cancelled"
    return status


def _previous(status_entry: dict[str, Any] | None, entries: list[dict[str, Any]]) -> IssueStatus | None:
    if status_entry is None:
        return None
    previous = PREVIOUS_STATUS_NAMES.get(_lower(status_entry.get("fromString")))
    resolution = next((e for e in entries if _lower(e.get("field")) == "resolution"), None)
    if previous == "done" and resolution is not None and _lower(resolution.get("fromString")) in CANCELLING_RESOLUTIONS:
        return "cancelled"
    return previous


def _browse_url(api_url: Any, key: str) -> str | None:
    """``<site>/browse/<KEY>`` from the issue's REST address (``https://acme.atlassian.net/rest/api/2/issue/1``)."""
    if not isinstance(api_url, str):
        return None
    try:
        parts = urlsplit(api_url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/browse/{key}"
