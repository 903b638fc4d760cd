"""Accepting feedback: one request's items (or a group of requests') stored once, linked, and queued to publish.

:func:`store_submissions` is load → decide → apply in ONE unit of work: it loads which items are stored already,
records the webhook nonces, and loads the stored items that may be an original; the pure decision
(:func:`ingest.domain.duplicates.place`) says which items are new, which are exact repeats and which repeat an
earlier item's words; it then inserts the new items and queues their ``feedback.raw.v1`` events, queues the
requests' tracker changes on ``tracker.v1`` (:mod:`ingest.service.tracker`), and commits.
:class:`GroupCommitter` runs it for groups of concurrent requests.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from feedbackloop.contracts import FEEDBACK_RAW, RawFeedback, TrackerChange
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory
from ingest.domain.duplicates import Candidate, Placement, candidate, content_lookup, place
from ingest.domain.feedback import FeedbackIn, RedactionPolicy, normalize
from ingest.service.tracker import record_changes
from ingest.store.group_commit import GroupCommit
from ingest.store.group_sql import GroupSql

__all__ = [
    "OFF_LOOP_CHARS",
    "GroupCommitter",
    "NonceReplayed",
    "Submission",
    "prepare_submission",
    "raw_event_id",
    "store_submissions",
]


class NonceReplayed(Exception):
    """A single-use nonce was seen before: the delivery is a replay. Nothing was stored."""


def raw_event_id(feedback_id: uuid.UUID) -> str:
    """The event that first publishes an item has an id derived from it: a re-run can never publish it twice."""
    return str(uuid.uuid5(feedback_id, "feedback.raw.v1"))


@dataclass(frozen=True)
class Submission:
    """One request's items, already normalized (``normalized[i]`` is ``items[i]``), its webhook nonce, and the
    tracker changes it tells (stored together: all of it or none)."""

    items: Sequence[FeedbackIn]
    normalized: Sequence[RawFeedback]
    received_at: datetime
    nonce: tuple[str, str] | None = None
    # The submitting request's context (its trace, its log fields): its events are published in it even when
    # another task (the group committer) stores them, so the trace runs on from the HTTP request.
    context: contextvars.Context | None = None
    changes: Sequence[TrackerChange] = ()

    @classmethod
    def of(
        cls, items: Sequence[FeedbackIn], received_at: datetime, nonce: tuple[str, str] | None = None, *,
        policy: RedactionPolicy, changes: Sequence[TrackerChange] = (),
    ) -> Submission:
        """Normalize ``items`` (redaction included) as received at ``received_at``; pure, raises nothing stored."""
        normalized = [normalize(item, received_at, policy) for item in items]
        return cls(items=items, normalized=normalized, received_at=received_at, nonce=nonce,
                   context=contextvars.copy_context(), changes=changes)


#: A request with more text than this is normalized in a worker thread: redacting 100 KB of hostile text takes
#: up to a few tenths of a second (see ingest.domain.redact), which the event loop must not spend.
OFF_LOOP_CHARS = 10_000


async def prepare_submission(
    items: Sequence[FeedbackIn], received_at: datetime, nonce: tuple[str, str] | None = None, *,
    policy: RedactionPolicy, changes: Sequence[TrackerChange] = (),
) -> Submission:
    """:meth:`Submission.of` for a request handler: large texts are normalized (redacted) off the event loop, so
    health checks and other requests are answered meanwhile. Small ones stay on it (a thread hand-off costs more)."""
    if sum(len(item.text) + len(item.subject or "") for item in items) <= OFF_LOOP_CHARS:
        return Submission.of(items, received_at, nonce, policy=policy, changes=changes)
    context = contextvars.copy_context()  # the request's, not the worker thread's
    normalized = await asyncio.to_thread(lambda: [normalize(item, received_at, policy) for item in items])
    return Submission(items=items, normalized=normalized, received_at=received_at, nonce=nonce, context=context,
                      changes=changes)


async def store_submissions(
    uow_factory: UnitOfWorkFactory,
    submissions: Sequence[Submission],
    *,
    duplicate_window: timedelta = timedelta(hours=24),
) -> list[list[uuid.UUID] | NonceReplayed]:
    """Store several requests' items and tracker changes in ONE transaction (group commit); one outcome per
    submission, in order.

    Each submission gets what it would have been answered alone: every item's ``feedback_id`` in input order,
    new or not (items already stored, or earlier in this same call, are not stored again), or ``NonceReplayed``
    when its nonce was seen before (then none of its items or changes are stored; the others are unaffected).
    Its tracker changes are queued on ``tracker.v1`` with deterministic event ids (a redelivered change is the
    same outbox row, kept once). A
    near-duplicate (same author, same words within ``duplicate_window``, any source) is stored and published
    with ``duplicate_of`` = the earlier item: linked, never dropped; detection spans the whole call. Any exception
    (store down, constraint violation) rolls the whole transaction back and is raised: nothing of any submission
    was stored, so the caller may retry them apart.
    """
    try:
        async with uow_factory() as uow:
            sql = GroupSql(uow.session)
            repo = sql.repo
            # load: the nonces (recorded in submission order), the items stored already, the possible originals
            accepted = [s.nonce is None or await repo.add_nonce(*s.nonce, s.received_at) for s in submissions]
            kept = [s for s, ok in zip(submissions, accepted, strict=True) if ok]
            candidates = [candidate(raw) for s in kept for raw in s.normalized]
            stored_ids, stored_by_key = await _load(sql, candidates, duplicate_window)
            # decide
            placements = place(candidates, stored_ids=stored_ids, stored_by_key=stored_by_key,
                               window=duplicate_window)
            # apply
            await sql.insert_many(_apply(uow, kept, candidates, placements))
            seen: set[str] = set()
            for submission in kept:
                if not submission.changes:
                    continue
                if submission.context is None:
                    record_changes(uow, submission.changes, seen=seen)
                else:
                    submission.context.run(record_changes, uow, submission.changes, seen=seen)
            await uow.commit()
    except IntegrityError as exc:
        nonces = [s.nonce for s in submissions if s.nonce is not None]
        if len(submissions) == 1 and nonces and "webhook_nonces" in str(exc):
            raise NonceReplayed(nonces[0][1]) from exc
        raise
    return [
        [raw.feedback_id for raw in s.normalized] if ok else NonceReplayed(s.nonce[1] if s.nonce else "")
        for s, ok in zip(submissions, accepted, strict=True)
    ]


async def _load(
    sql: GroupSql, candidates: Sequence[Candidate], window: timedelta
) -> tuple[set[uuid.UUID], dict[str, list[tuple[datetime, uuid.UUID]]]]:
    """The stored ids among the candidates', and the stored items that may be an original (what
    :func:`content_lookup` names): on SQLite in ONE round trip, which asks for the items of every keyed candidate
    (a stored one's too: it is not known yet) and keeps those the lookup names; elsewhere in two."""
    wide = content_lookup(candidates, (), window)
    found_ids, found = await sql.load([str(c.feedback_id) for c in candidates],
                                      (wide.keys, wide.since, wide.until) if wide is not None else None)
    stored_ids = {uuid.UUID(f) for f in found_ids}
    lookup = content_lookup(candidates, stored_ids, window)
    if lookup is None:
        return stored_ids, {}
    if found is None:
        found = await sql.repo.with_content(lookup.keys, lookup.since, lookup.until)
    return stored_ids, {
        key: [(created, uuid.UUID(fid)) for created, fid in pairs if lookup.since <= created <= lookup.until]
        for key, pairs in found.items() if key in lookup.keys
    }


def _apply(
    uow: UnitOfWork, submissions: Sequence[Submission], candidates: Sequence[Candidate],
    placements: Sequence[Placement],
) -> list[dict[str, Any]]:
    """Queue the new items' events (each in its request's context) and return their rows; repeats are left alone."""
    rows: list[dict[str, Any]] = []
    decided = iter(zip(candidates, placements, strict=True))
    for submission in submissions:
        for item, raw in zip(submission.items, submission.normalized, strict=True):
            found, placement = next(decided)
            if not placement.new:
                continue
            if placement.duplicate_of is not None:
                raw = raw.model_copy(update={"duplicate_of": placement.duplicate_of})
            rows.append(_row(item, raw, found.content_key))
            event_id = raw_event_id(raw.feedback_id)
            if submission.context is None:
                uow.publish(FEEDBACK_RAW, raw, event_id=event_id)
            else:
                submission.context.run(uow.publish, FEEDBACK_RAW, raw, event_id=event_id)
    return rows


def _row(item: FeedbackIn, raw: RawFeedback, content_key: str | None) -> dict[str, Any]:
    return {
        "feedback_id": str(raw.feedback_id),
        "source": raw.source,
        "external_id": item.external_id,  # the source's own id: ingest's store keeps it
        "created_at": raw.created_at,
        "received_at": raw.received_at,
        "item": raw.model_dump(mode="json"),
        "raw": item.model_dump(mode="json"),
        "content_key": content_key,
    }


class GroupCommitter(GroupCommit[Submission, list[uuid.UUID]]):
    """Group commit of ingest's submissions: :func:`store_submissions` for each group of concurrent requests.

    ``submit`` answers a submission's ids once committed, or raises ``NonceReplayed`` / ``NotStored`` /
    ``RuntimeError`` (see :mod:`ingest.store.group_commit`).
    """

    def __init__(
        self, uow_factory: UnitOfWorkFactory, *, duplicate_window: timedelta = timedelta(hours=24),
        max_items: int = 256, linger: float = 0.002,
    ) -> None:
        async def store(group: Sequence[Submission]) -> list[list[uuid.UUID] | NonceReplayed]:
            return await store_submissions(uow_factory, group, duplicate_window=duplicate_window)

        super().__init__(store, size=lambda s: len(s.items) + len(s.changes), max_items=max_items, linger=linger)
