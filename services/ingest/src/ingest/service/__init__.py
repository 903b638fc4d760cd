"""Ingest's use cases, one module each: each opens a unit of work, loads what it needs, calls a pure domain
decision, stores the result with its outbox rows and commits.

    feedback   accepting items (``POST /v1/feedback``, webhooks): stored once, near-duplicates linked; group commit
    erasure    erasing a customer's or an author's items, announced on ``privacy.v1``
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
    "store_submissions",
]
