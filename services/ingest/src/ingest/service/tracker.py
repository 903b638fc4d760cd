"""Tracker changes (``tracker.v1``): a GitHub, Jira or Linear issue changed state, as its webhook told ingest.

They are not stored as items: each becomes an outbox row, written in the SAME transaction as the delivery's
webhook nonce and items (:func:`ingest.service.feedback.store_submissions` calls :func:`record_changes` inside its
unit of work, so the group commit stores them), and the relay publishes it. Its event id is derived from what the
change says (issue, status, when), so a vendor's redelivery is the same event: the outbox keeps one row per id,
and consumers skip ids they processed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC

from feedbackloop.contracts import TRACKER, TrackerChange
from feedbackloop.db import UnitOfWork

__all__ = ["TRACKER_NAMESPACE", "record_changes", "tracker_event_id"]

#: Namespace of the tracker changes' event ids. Never change it: a redelivery after the change would be new.
TRACKER_NAMESPACE = uuid.UUID("0b8f4c52-7d1e-5a93-8c6b-3e2f1a9d7c40")


def tracker_event_id(change: TrackerChange) -> str:
    """uuid5 of (issue key, status, when it changed, in UTC): the same change told twice is one event."""
    when = change.changed_at
    at = (when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
    return str(uuid.uuid5(TRACKER_NAMESPACE, f"{change.issue_key}\x1f{change.status}\x1f{at}"))


def record_changes(uow: UnitOfWork, changes: Iterable[TrackerChange], *, seen: set[str] | None = None) -> Sequence[str]:
    """Queue each change on ``tracker.v1`` in ``uow`` (written at its commit); returns their event ids.

    ``seen`` holds the event ids queued already in this unit of work: a change told twice in one group commit
    (two concurrent redeliveries) is queued once.
    """
    queued = seen if seen is not None else set()
    ids = []
    for change in changes:
        event_id = tracker_event_id(change)
        ids.append(event_id)
        if event_id not in queued:
            queued.add(event_id)
            uow.publish(TRACKER, change, event_id=event_id)
    return ids
