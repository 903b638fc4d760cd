"""GitHub: ``X-Hub-Signature-256: sha256=`` hex HMAC-SHA256 of the body; event name in ``X-GitHub-Event``.

Feedback: ``issues`` (opened), ``issue_comment`` (created) and ``discussion`` (created) from repositories on the
allow-list (``INGEST_GITHUB_REPOSITORIES``; empty allows every repository); ``ping`` is answered. Comments
by the repository's owners, members and collaborators are ignored: they are the team, not customers.

Tracker changes (``tracker.v1``): ``issues`` opened / reopened → ``open``, closed → ``done`` when its
``state_reason`` is ``completed`` or null, ``cancelled`` otherwise (``not_planned``, ``duplicate``: closed without
a fix, so no customer is told it is fixed). From ANY repository: the allow-list governs feedback only, and
aggregation ignores issues nobody linked. ``issues.opened`` gives both its item and a change."""

from __future__ import annotations

from typing import Any

from feedbackloop.contracts.events import Channel, IssueStatus, TrackerChange
from feedbackloop.trackers.keys import github_key
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    Verified,
    as_datetime,
    as_dict,
    as_list,
    build,
    build_change,
    dig,
    text_of,
)
from ingest.domain.connectors.hmac_schemes import verify_body_hmac
from ingest.domain.text import to_text

_TEAM = {"OWNER", "MEMBER", "COLLABORATOR"}
_TAKEN = {
    ("issues", "opened"): "issue",
    ("issue_comment", "created"): "comment",
    ("discussion", "created"): "discussion",
}
_ISSUE_ACTIONS = ("opened", "closed", "reopened")
# Closed without a fix: GitHub's "not_planned" and "duplicate" (any other reason but "completed" counts as such).
_DONE_REASONS = (None, "completed")


class GitHub:
    source: str = "github"
    channel: Channel = "community"

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(
            delivery, secret, header="x-hub-signature-256", algorithm="sha256", encoding="hex", prefix="sha256="
        )
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        event = delivery.header("x-github-event") or ""
        if event == "ping":
            return Outcome(ignored="ping", reply={"ok": True, "zen": dig(payload, "zen")})
        action = dig(payload, "action")
        changes: list[TrackerChange] = []
        unsupported = f"unsupported GitHub event {event!r} with action {action!r}"
        if event == "issues" and action in _ISSUE_ACTIONS:
            change = _change(payload, str(action), delivery)
            if isinstance(change, str):
                unsupported = change
            else:
                changes.append(change)
        what = _TAKEN.get((event, str(action)))
        if what is None:
            return _only(changes, unsupported)
        repository = str(dig(payload, "repository", "full_name") or "")
        allowed = {r.lower() for r in options.github_repositories}
        if allowed and repository.lower() not in allowed:
            return _only(changes, f"repository {repository!r} is not on INGEST_GITHUB_REPOSITORIES")
        thing = as_dict(dig(payload, "comment" if what == "comment" else what))
        if what == "comment" and thing.get("author_association") in _TEAM:
            return Outcome.ignore("a comment by the repository's team is not customer feedback")
        title = dig(payload, "issue", "title") if what == "comment" else thing.get("title")
        labels = [dig(label, "name") for label in as_list(dig(payload, "issue", "labels"))]
        item = build(
            source=self.source,
            channel=self.channel,
            external_id=f"{repository}:{what}:{thing.get('id')}" if thing.get("id") is not None else None,
            text=to_text(text_of(thing.get("body")), strip_quotes=True),
            subject=text_of(title),
            author_id=dig(thing, "user", "id"),
            name=text_of(dig(thing, "user", "login")),
            customer_name=text_of(dig(payload, "organization", "login")),
            url=text_of(thing.get("html_url")),
            created_at=as_datetime(thing.get("created_at")),
            tags=[f"repo:{repository}"] + [label for label in labels if isinstance(label, str)],
        )
        if isinstance(item, str):
            return _only(changes, item)
        return Outcome([item], changes=changes)


def _only(changes: list[TrackerChange], reason: str) -> Outcome:
    """No feedback item (``reason``): the tracker changes alone, or nothing."""
    return Outcome(changes=changes) if changes else Outcome.ignore(reason)


def _change(payload: Any, action: str, delivery: Delivery) -> TrackerChange | str:
    """The ``tracker.v1`` change an ``issues`` event says, or why there is none."""
    issue = as_dict(dig(payload, "issue"))
    repository, number = dig(payload, "repository", "full_name"), issue.get("number")
    if (not isinstance(repository, str) or "/" not in repository or isinstance(number, bool)
            or not isinstance(number, int) or number < 1):
        return "the issues event names no repository and issue number"
    reason = issue.get("state_reason")
    status: IssueStatus = "open"
    if action == "closed":
        status = "done" if reason in _DONE_REASONS else "cancelled"
    closed_at = as_datetime(issue.get("closed_at")) if action == "closed" else None
    return build_change(
        tracker="github",
        issue_key=github_key(repository, number),
        status=status,
        # a closed issue was open; a reopened one was closed, done or not: GitHub does not say which
        previous_status="open" if action == "closed" else None,
        action=action,
        resolution=reason,
        changed_at=closed_at or as_datetime(issue.get("updated_at")) or as_datetime(issue.get("created_at"))
        or delivery.received_at,
        url=issue.get("html_url"),
        title=issue.get("title"),
    )
