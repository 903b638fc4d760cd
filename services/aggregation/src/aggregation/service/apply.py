"""The consumer's use cases (``feedback.classified.v1``, ``releases.v1``) and the small writes of the API.

They run inside a unit of work: read and write through repositories on ``uow.session``, raise events with
``uow.publish``, never commit (the consumer, or the caller, does)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aggregation.domain.items import should_apply
from aggregation.domain.urgent import urgent_insight, urgent_insight_id
from aggregation.service.loops import LoopWatch, close_on_release
from aggregation.store.memo import StoreCache
from aggregation.store.releases import ReleaseRepository
from aggregation.store.repository import InsightRepository
from aggregation.store.staging import StagedBatch
from feedbackloop.contracts import INSIGHTS, RELEASES, ClassifiedFeedback, Envelope, Release
from feedbackloop.db import UnitOfWork
from feedbackloop.runtime import PoisonMessage

__all__ = ["acknowledge_insight", "apply_classified", "apply_release", "hint_batch", "publish_release",
           "release_event_id", "write_staged"]

_RELEASE_NAMESPACE = uuid.UUID("5d0e8c1a-7b3f-5a2e-9c4d-6e8f0a1b2c3d")


async def apply_classified(uow: UnitOfWork, event: Envelope[Any], cache: StoreCache | None = None) -> bool:
    """Apply a ``feedback.classified.v1`` event's item if it is newer than the stored (or staged) revision.

    Returns whether it was applied. An event not newer than what is stored or staged earlier in the unit of work
    (a duplicate, or a revision that arrived late), or about an item erased before (``privacy.v1``), changes
    nothing. Applying it stages the item in the unit of work (:class:`~aggregation.store.staging.StagedBatch`);
    when the unit of work commits, the batch's items are written at once: each item replaced with its themes,
    its contributions in the rollups moved from the stored revision's labels to the latest one's (in the buckets
    of its ``created_at``), the deltas of all the batch's items merged per cell; those hours marked for the
    detectors; cluster sizes kept. The item's ``urgent_item`` insight is raised at once, the first time the item
    is critical. Raises :class:`PoisonMessage` for an event whose subject is not its item. ``cache`` is the
    service's (:class:`StoreCache`: statements, label keys and the consumer's batch hint kept between units of
    work); without, it is slower.
    """
    item: ClassifiedFeedback = event.data
    feedback_id = str(item.feedback_id)
    if event.subject != feedback_id:
        raise PoisonMessage(f"subject {event.subject!r} is not the item's feedback_id {item.feedback_id}")
    staged = StagedBatch.of(uow.session, cache if cache is not None else StoreCache())
    await staged.load(uow.session, feedback_id)
    if staged.erased(feedback_id):
        return False  # erased (privacy.v1) before this event got here: never store it again
    stored_revision = staged.revision(feedback_id)
    if not should_apply(stored_revision, item.revision):
        return False
    staged.stage(item)
    if stored_revision is None:  # a new item of a theme whose loop closed before it was written: a regression?
        (await LoopWatch.of(uow.session)).note(uow.session, item)

    insights = InsightRepository(uow.session)
    insight_id = str(urgent_insight_id(item.feedback_id))
    insight = urgent_insight(item, already_flagged=False, now=datetime.now(UTC))
    if insight is not None and await insights.exists(insight_id):  # only an urgent item asks the store
        insight = None
    if insight is not None:
        await insights.add(insight_id, insight.type, insight.severity, insight.theme, insight.created_at,
                           insight.model_dump(mode="json", by_alias=True))
        uow.publish(INSIGHTS, insight, event_id=insight_id)
    return True


async def write_staged(uow: UnitOfWork, cache: StoreCache | None = None) -> None:
    """Write the items staged in ``uow`` so far (a handler is about to read or change them), and read the store
    again for the next item. Undone with the savepoint it runs in."""
    staged = StagedBatch.of(uow.session, cache if cache is not None else StoreCache())
    await uow.session.run_sync(lambda _: staged.write())


def hint_batch(cache: StoreCache, events: Sequence[Envelope[Any]]) -> None:
    """Tell ``cache`` the items of the batch about to be applied (the consumer's ``prepare`` step)."""
    cache.hint_batch(str(e.data.feedback_id) for e in events if isinstance(e.data, ClassifiedFeedback))


async def apply_release(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Store a ``releases.v1`` marker; the same ``release_id`` again replaces it (a corrected marker). A release
    naming tracker issues (``issues``) closes the loops of the links following them (``service/loops.py``)."""
    release: Release = event.data
    await ReleaseRepository(uow.session).upsert(release.release_id, release.version, release.kind, release.service,
                                                release.released_at, release.model_dump(mode="json"))
    if release.issues:
        await close_on_release(uow, release)


def release_event_id(release: Release) -> str:
    """Deterministic per (release_id, version, time): posting the same marker twice is one event."""
    return str(uuid.uuid5(_RELEASE_NAMESPACE, f"{release.release_id}\x1f{release.version}\x1f"
                                              f"{release.released_at.isoformat()}"))


def publish_release(uow: UnitOfWork, release: Release) -> str:
    """Raise the ``releases.v1`` event of ``release`` (through the outbox); returns its event id.

    Aggregation stores the marker when it consumes its own event, like any other producer's."""
    event_id = release_event_id(release)
    uow.publish(RELEASES, release, event_id=event_id)
    return event_id


async def acknowledge_insight(uow: UnitOfWork, insight_id: str, by: str | None) -> dict[str, Any] | None:
    """Acknowledge the insight; returns its data, or None when there is no such insight."""
    return await InsightRepository(uow.session).acknowledge(insight_id, datetime.now(UTC), by)
