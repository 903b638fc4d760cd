"""Tracker channels: an issue in GitHub, Jira or Linear for an insight, through :mod:`feedbackloop.trackers`.

The issue has the insight's title and a Markdown body (:func:`notification.domain.messages.issue_markdown`: its
metrics, window, evidence count and a dashboard link). The delivery id is the issue's marker, and
``create_issue`` first looks for an issue carrying it, so a retry after a lost answer returns the issue made the
first time; routing gives one delivery per (insight, rule, channel) and the episode suppression stops later
insights of the same story, so an insight episode files one issue. The created issue's key and URL are the
delivery's ``result``.

Trackers are reached with the operator's credentials at URLs from the operator's environment (``TRACKER_*``),
never from a rule, so the client is a plain one, not the egress-guarded client of rule-given URLs. Errors map to
outcomes as :class:`~feedbackloop.trackers.TrackerError` says: ``retryable`` (429, 5xx, network) with its
``retry_after``; anything else — an unconfigured tracker included — fails the delivery for good.
"""

from __future__ import annotations

import httpx

from feedbackloop.trackers import IssueDraft, TrackerError, TrackerSettings, tracker_client
from notification.domain.channels import TRACKERS
from notification.domain.messages import issue_markdown, issue_title
from notification.transports.base import ERROR_CHARS, Message, SendOutcome

__all__ = ["TrackerSender"]


class TrackerSender:
    def __init__(self, client: httpx.AsyncClient, settings: TrackerSettings, *, dashboard_url: str) -> None:
        self._client = client
        self._settings = settings
        self._dashboard_url = dashboard_url

    async def send(self, message: Message) -> SendOutcome:
        channel = message.channel
        tracker = channel.get("tracker")
        if tracker not in TRACKERS:
            return SendOutcome(None, f"unsupported tracker {tracker!r}")
        target = str(channel.get(TRACKERS[str(tracker)][0]) or "")
        try:
            draft = IssueDraft(target=target, title=issue_title(message.payload),
                               body=issue_markdown(message.payload, self._dashboard_url),
                               marker=message.delivery_id, labels=tuple(channel.get("labels") or ()),
                               issue_type=str(channel.get("issue_type") or "Bug"))
            client = tracker_client(tracker, self._settings, self._client)
            issue = await client.create_issue(draft)
        except TrackerError as exc:  # TrackerNotConfigured too: never retryable
            return SendOutcome(exc.status, f"{tracker}: {exc}"[:ERROR_CHARS], retry_after=exc.retry_after,
                               retryable=exc.retryable)
        except ValueError as exc:  # a draft the client refuses (an empty title or target)
            return SendOutcome(None, f"{tracker}: {exc}"[:ERROR_CHARS])
        return SendOutcome(201, detail=f"{issue.ref.key}" + (f" {issue.ref.url}" if issue.ref.url else ""))
