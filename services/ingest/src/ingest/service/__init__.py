"""Ingest's use cases, one module each: each opens a unit of work, loads what it needs, calls a pure domain
decision, stores the result with its outbox rows and commits.

    feedback   accepting items (``POST /v1/feedback``, webhooks): stored once, near-duplicates linked; group commit
    erasure    erasing a customer's or an author's items, announced on ``privacy.v1``
    tracker    tracker issue changes from GitHub, Jira and Linear webhooks, queued on ``tracker.v1`` (in the same
               group-commit transaction as the delivery's items and nonce)
"""

from __future__ import annotations

from ingest.service.erasure import ErasureStatus, erase, erasure_status
from ingest.service.feedback import (
    OFF_LOOP_CHARS,
    GroupCommitter,
    NonceReplayed,
    Submission,
    prepare_submission,
    raw_event_id,
    store_submissions,
)
from ingest.service.tracker import record_changes, tracker_event_id
from ingest.store.group_commit import NotStored

__all__ = [
    "OFF_LOOP_CHARS",
    "ErasureStatus",
    "GroupCommitter",
    "NonceReplayed",
    "NotStored",
    "Submission",
    "erase",
    "erasure_status",
    "prepare_submission",
    "raw_event_id",
    "record_changes",
    "store_submissions",
    "tracker_event_id",
]
