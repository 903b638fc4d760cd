"""Linear: issue state changes → ``tracker.v1``. Signature: ``Linear-Signature`` = hex HMAC-SHA256 of the body; replay
window on the body's ``webhookTimestamp`` (Unix ms, when Linear sent it) against the delivery's arrival, with the
configured tolerance (``INGEST_WEBHOOK_TOLERANCE_SECONDS``; Linear suggests a minute). No feedback items.

``type: Issue`` with action ``create``, or ``update`` when ``updatedFrom`` holds ``stateId`` (the state changed),
gives one change: ``data.state.type`` backlog / unstarted / triage → open, started → in_progress, completed → done,
canceled → cancelled; ``resolution`` is the state's name. Linear names the old state only by id, so
``previous_status`` stays None. Everything else (other types, removals, edits) is ignored with its reason.
"""

from __future__ import annotations

import json
from typing import Any

from feedbackloop.contracts.events import IssueStatus
from feedbackloop.trackers.keys import InvalidIssueRef, parse_issue_ref
from ingest.domain.connectors.base import (
    ConnectorOptions,
    Delivery,
    Outcome,
    VerificationFailed,
    Verified,
    as_datetime,
    as_dict,
    build_change,
    dig,
    require_fresh,
)
from ingest.domain.connectors.hmac_schemes import verify_body_hmac

__all__ = ["Linear"]

SIGNATURE = "linear-signature"
TIMESTAMP = "webhookTimestamp"
_STATES: dict[str, IssueStatus] = {
    "triage": "open", "backlog": "open", "unstarted": "open", "started": "in_progress", "completed": "done",
    "canceled": "cancelled", "cancelled": "cancelled",
}


class Linear:
    source: str = "linear"
    channel: None = None

    def verify(self, delivery: Delivery, secret: str, options: ConnectorOptions) -> Verified:
        verify_body_hmac(delivery, secret, header=SIGNATURE, algorithm="sha256", encoding="hex")
        try:
            payload = json.loads(delivery.body)
        except (ValueError, RecursionError):
            # Not JSON: the endpoint answers 400 before mapping anything (its parser refuses all that this one
            # does), so there is nothing a replay could have stored.
            return Verified()
        stamp = dig(payload, TIMESTAMP)
        sent_at = as_datetime(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None
        if sent_at is None:
            raise VerificationFailed("timestamp", f"The body's `{TIMESTAMP}` is missing or not a Unix time in ms.")
        require_fresh(sent_at, delivery.received_at, options.tolerance, TIMESTAMP)
        return Verified()

    def map(self, payload: Any, delivery: Delivery, options: ConnectorOptions) -> Outcome:
        kind, action = dig(payload, "type"), dig(payload, "action")
        if kind != "Issue" or action not in ("create", "update"):
            return Outcome.ignore(f"unsupported Linear event {kind!r} with action {action!r}")
        if action == "update" and "stateId" not in as_dict(dig(payload, "updatedFrom")):
            return Outcome.ignore("the update does not change the issue's state")
        data = as_dict(dig(payload, "data"))
        identifier = data.get("identifier")
        try:
            ref = parse_issue_ref(f"linear:{identifier}") if isinstance(identifier, str) else None
        except InvalidIssueRef:
            ref = None
        if ref is None:
            return Outcome.ignore("the Linear event names no issue identifier")
        state = as_dict(data.get("state"))
        state_type = state.get("type")
        status = _STATES.get(state_type.strip().lower()) if isinstance(state_type, str) else None
        if status is None:
            return Outcome.ignore(f"the issue's state type {state_type!r} is not a known one")
        change = build_change(
            tracker="linear",
            issue_key=ref.key,
            status=status,
            action=str(action),
            resolution=state.get("name"),
            # when the change happened, not when this delivery was sent: a retry is the same event
            changed_at=as_datetime(data.get("updatedAt")) or as_datetime(dig(payload, "createdAt"))
            or as_datetime(dig(payload, TIMESTAMP)) or delivery.received_at,
            url=data.get("url") or dig(payload, "url"),
            title=data.get("title"),
        )
        return Outcome.ignore(change) if isinstance(change, str) else Outcome(changes=[change])
