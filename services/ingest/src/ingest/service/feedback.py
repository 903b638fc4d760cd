"""Ingest use cases: each opens a unit of work, calls the domain, stores the result with its outbox rows, commits."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from feedbackloop.contracts import FEEDBACK_RAW, PRIVACY, ErasureRequest, RawFeedback
from feedbackloop.db import UnitOfWorkFactory
from ingest.domain.erasure import ErasureTarget, erased_item, erasure_event_id
from ingest.domain.feedback import FeedbackIn, RedactionPolicy, normalize
from ingest.domain.text import content_key
from ingest.store.models import Erasure
from ingest.store.repository import ErasureRepository, FeedbackRepository

__all__ = [
    "ErasureStatus",
    "NonceReplayed",
    "Submission",
    "accept_feedback",
    "author_key",
    "erase",
    "erasure_status",
    "prepare_submission",
    "raw_event_id",
    "store_submissions",
]


class NonceReplayed(Exception):
    """A single-use nonce was seen before: the delivery is a replay. Nothing was stored."""


def raw_event_id(feedback_id: uuid.UUID) -> str:
    """The event that first publishes an item has an id derived from it: a re-run can never publish it twice."""
    return str(uuid.uuid5(feedback_id, "feedback.raw.v1"))


def author_key(raw: RawFeedback) -> str | None:
    """Who said it, comparable across sources: the email hash, else the source's own author id, else None."""
    if raw.author.email_hash:
        return f"email:{raw.author.email_hash}"
    if raw.author.id:
        return f"{raw.source}:{raw.author.id}"
    return None


@dataclass(frozen=True)
class Submission:
    """One request's items, already normalized (``normalized[i]`` is ``items[i]``), and its webhook nonce."""

    items: Sequence[FeedbackIn]
    normalized: Sequence[RawFeedback]
    received_at: datetime
    nonce: tuple[str, str] | None = None
    # The submitting request's context (its trace, its log fields): its events are published in it even when
    # another task (the group committer) stores them, so the trace runs on from the HTTP request.
    context: contextvars.Context | None = None

    @classmethod
    def of(
        cls, items: Sequence[FeedbackIn], received_at: datetime, nonce: tuple[str, str] | None = None, *,
        policy: RedactionPolicy,
    ) -> Submission:
        """Normalize ``items`` (redaction included) as received at ``received_at``; pure, raises nothing stored."""
        normalized = [normalize(item, received_at, policy) for item in items]
        return cls(items=items, normalized=normalized, received_at=received_at, nonce=nonce,
                   context=contextvars.copy_context())


#: A request with more text than this is normalized in a worker thread: redacting 100 KB of hostile text takes
#: up to a few tenths of a second (see ingest.domain.redact), which the event loop must not spend.
OFF_LOOP_CHARS = 10_000


async def prepare_submission(
    items: Sequence[FeedbackIn], received_at: datetime, nonce: tuple[str, str] | None = None, *,
    policy: RedactionPolicy,
) -> Submission:
    """:meth:`Submission.of` for a request handler: large texts are normalized (redacted) off the event loop, so
    health checks and other requests are answered meanwhile. Small ones stay on it (a thread hand-off costs more)."""
    if sum(len(item.text) + len(item.subject or "") for item in items) <= OFF_LOOP_CHARS:
        return Submission.of(items, received_at, nonce, policy=policy)
    context = contextvars.copy_context()  # the request's, not the worker thread's
    normalized = await asyncio.to_thread(lambda: [normalize(item, received_at, policy) for item in items])
    return Submission(items=items, normalized=normalized, received_at=received_at, nonce=nonce, context=context)


async def accept_feedback(
    uow_factory: UnitOfWorkFactory,
    items: Sequence[FeedbackIn],
    received_at: datetime | None = None,
    *,
    duplicate_window: timedelta = timedelta(hours=24),
    nonce: tuple[str, str] | None = None,
    policy: RedactionPolicy,
) -> list[uuid.UUID]:
    """Store new items and queue their events, all in one transaction; items already stored are left as they are.

    An item whose author said the same words (case, spacing and punctuation aside) within
    ``duplicate_window`` of an earlier item, from any source, is stored and published with
    ``duplicate_of`` = the earliest such item: linked, never dropped. ``nonce`` (source, value) is recorded
    in the same transaction; one seen before raises ``NonceReplayed`` and stores nothing.

    Returns every item's ``feedback_id`` in input order, new or not: a retried delivery gets the same answer.
    """
    submission = Submission.of(items, received_at or datetime.now(UTC), nonce, policy=policy)
    (outcome,) = await store_submissions(uow_factory, [submission], duplicate_window=duplicate_window)
    if isinstance(outcome, NonceReplayed):
        raise outcome
    return outcome


async def store_submissions(
    uow_factory: UnitOfWorkFactory,
    submissions: Sequence[Submission],
    *,
    duplicate_window: timedelta = timedelta(hours=24),
) -> list[list[uuid.UUID] | NonceReplayed]:
    """Store several requests' items in ONE transaction (group commit); one outcome per submission, in order.

    Each submission gets what :func:`accept_feedback` would have answered it alone: its items' ids (items
    already stored, or earlier in this same call, are not stored again), or ``NonceReplayed`` when its nonce
    was seen before (then none of its items are stored; the others are unaffected). Duplicate detection spans
    the whole call as it spans one request. Any exception (store down, constraint violation) rolls the whole
    transaction back and is raised: nothing of any submission was stored, so the caller may retry them apart.
    """
    outcomes: list[list[uuid.UUID] | NonceReplayed] = []
    try:
        async with uow_factory() as uow:
            repo = FeedbackRepository(uow.session)
            known = await repo.existing_ids(str(raw.feedback_id) for s in submissions for raw in s.normalized)
            # every new item's content key, and in one query the stored items that may be its original
            ckeys: dict[tuple[int, int], str] = {}
            for s_index, submission in enumerate(submissions):
                for i_index, raw in enumerate(submission.normalized):
                    who = author_key(raw)
                    if who and str(raw.feedback_id) not in known:
                        ckeys[(s_index, i_index)] = content_key(who, raw.text)
            stored_with: dict[str, list[tuple[datetime, str]]] = {}
            checking = duplicate_window > timedelta(0)
            if ckeys and checking:
                created = [submissions[n].normalized[i].created_at for n, i in ckeys]
                stored_with = await repo.with_content(
                    set(ckeys.values()), min(created) - duplicate_window, max(created) + duplicate_window
                )
            batch_keys: dict[str, tuple[datetime, uuid.UUID]] = {}
            rows: list[dict[str, Any]] = []
            for s_index, submission in enumerate(submissions):
                nonce = submission.nonce
                if nonce is not None and not await repo.add_nonce(nonce[0], nonce[1], submission.received_at):
                    outcomes.append(NonceReplayed(nonce[1]))
                    continue
                for i_index, (item, raw) in enumerate(zip(submission.items, submission.normalized, strict=True)):
                    key = str(raw.feedback_id)
                    if key in known:
                        continue
                    known.add(key)
                    ckey = ckeys.get((s_index, i_index))
                    if ckey is not None and checking:
                        earlier = batch_keys.get(ckey)
                        if earlier is not None and abs(earlier[0] - raw.created_at) <= duplicate_window:
                            original: uuid.UUID | None = earlier[1]
                        else:
                            since, until = raw.created_at - duplicate_window, raw.created_at + duplicate_window
                            found = next((f for c, f in stored_with.get(ckey, ()) if since <= c <= until), None)
                            original = uuid.UUID(found) if found else None
                        if original is not None and original != raw.feedback_id:
                            raw = raw.model_copy(update={"duplicate_of": original})
                        else:
                            batch_keys.setdefault(ckey, (raw.created_at, raw.feedback_id))
                    rows.append(
                        {
                            "feedback_id": key,
                            "source": raw.source,
                            "external_id": item.external_id,  # the source's own id: ingest's store keeps it
                            "created_at": raw.created_at,
                            "received_at": raw.received_at,
                            "item": raw.model_dump(mode="json"),
                            "raw": item.model_dump(mode="json"),
                            "content_key": ckey,
                        }
                    )
                    if submission.context is None:
                        uow.publish(FEEDBACK_RAW, raw, event_id=raw_event_id(raw.feedback_id))
                    else:
                        submission.context.run(uow.publish, FEEDBACK_RAW, raw, event_id=raw_event_id(raw.feedback_id))
                outcomes.append([raw.feedback_id for raw in submission.normalized])
            await repo.insert_many(rows)
            await uow.commit()
    except IntegrityError as exc:
        nonces = [s.nonce for s in submissions if s.nonce is not None]
        if len(submissions) == 1 and nonces and "webhook_nonces" in str(exc):
            raise NonceReplayed(nonces[0][1]) from exc
        raise
    return outcomes


async def erase(
    uow_factory: UnitOfWorkFactory, target: ErasureTarget, *, reason: str, requested_by: str,
    now: datetime | None = None,
) -> ErasureRequest:
    """Erase ``target``'s items in ingest's store and raise the ``privacy.v1`` event, in ONE transaction.

    Each matching item keeps only its id, source, channel and times (see ``erased_item``); its raw copy and
    content key go, and so do its ``feedback.raw.v1`` outbox rows (a replay must not re-publish the text; one
    not yet published never will be). The request is recorded with the ids it erased, and its event goes to the
    outbox in the same commit: the erasure and its announcement are stored together or not at all. Items an
    earlier request erased carry no names any more and are not found again. Any exception rolls everything back
    and is raised.
    """
    at = now or datetime.now(UTC)
    request_id = uuid.uuid4()
    async with uow_factory() as uow:
        repo = ErasureRepository(uow.session)
        ids = await repo.matching_ids(target)
        found = await repo.items(ids)
        await repo.erase_items({fid: erased_item(item, request_id, at) for fid, item in found.items()})
        await repo.forget_events(uow_factory.tables.outbox, FEEDBACK_RAW.name, ids)
        event = ErasureRequest(request_id=request_id, customer_id=target.customer_id,
                               author_email_hash=target.author_email_hash,
                               feedback_ids=[uuid.UUID(fid) for fid in ids], requested_at=at, reason=reason)
        event_id = erasure_event_id(request_id)
        repo.add(Erasure(request_id=str(request_id), requested_at=at, requested_by=requested_by,
                         customer_id=target.customer_id, author_email_hash=target.author_email_hash,
                         reason=reason, feedback_ids=ids, event_id=event_id))
        uow.publish(PRIVACY, event, event_id=event_id)
        await uow.commit()
    return event


@dataclass(frozen=True)
class ErasureStatus:
    """A recorded erasure request, and whether its ``privacy.v1`` event has reached the broker."""

    request_id: uuid.UUID
    requested_at: datetime
    requested_by: str
    customer_id: str | None
    author_email_hash: str | None
    reason: str
    feedback_ids: list[uuid.UUID]
    published_at: datetime | None
    published: bool


async def erasure_status(uow_factory: UnitOfWorkFactory, request_id: uuid.UUID) -> ErasureStatus | None:
    """The request ``request_id``, None when there is none. An event no longer in the outbox (pruned after its
    retention) was published long ago."""
    async with uow_factory() as uow:
        repo = ErasureRepository(uow.session)
        found = await repo.get(str(request_id))
        if found is None:
            return None
        queued, sent_at = await repo.event_sent_at(uow_factory.tables.outbox, found.event_id)
        return ErasureStatus(
            request_id=uuid.UUID(found.request_id), requested_at=found.requested_at,
            requested_by=found.requested_by, customer_id=found.customer_id,
            author_email_hash=found.author_email_hash, reason=found.reason,
            feedback_ids=[uuid.UUID(f) for f in found.feedback_ids], published_at=sent_at,
            published=sent_at is not None or not queued,
        )
