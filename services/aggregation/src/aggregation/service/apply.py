"""The consumer's use cases (``feedback.classified.v1``, ``releases.v1``) and the small writes of the API.

They run inside a unit of work: read and write through repositories on ``uow.session``, raise events with
``uow.publish``, never commit (the consumer, or the caller, does)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aggregation.domain.items import feedback_row, should_apply, theme_rows
from aggregation.domain.rollups import bucket_start, rollup_changes
from aggregation.domain.urgent import urgent_insight, urgent_insight_id
from aggregation.store.memo import StoreCache
from aggregation.store.models import erasure_tables
from aggregation.store.releases import ReleaseRepository
from aggregation.store.repository import FeedbackRepository, InsightRepository
from aggregation.store.rollups import RollupRepository
from feedbackloop.contracts import INSIGHTS, RELEASES, ClassifiedFeedback, Envelope, Release
from feedbackloop.db import UnitOfWork
from feedbackloop.db.erasures import erased_among
from feedbackloop.runtime import PoisonMessage

__all__ = ["acknowledge_insight", "apply_classified", "apply_release", "publish_release", "release_event_id"]

_RELEASE_NAMESPACE = uuid.UUID("5d0e8c1a-7b3f-5a2e-9c4d-6e8f0a1b2c3d")


async def apply_classified(uow: UnitOfWork, event: Envelope[Any], cache: StoreCache | None = None) -> bool:
    """Store a ``feedback.classified.v1`` event's item if it is newer than the stored revision.

    Returns whether it was applied. An event not newer than what is stored (a duplicate, or a revision
    that arrived late), or about an item erased before (``privacy.v1``), changes nothing. Applying it
    replaces the item and its themes, moves its contributions in the rollups from the stored revision's labels
    to the new ones (in the buckets of its ``created_at``), marks those hours for the detectors, keeps its
    cluster's size, and raises the item's ``urgent_item`` insight the first time the item is critical. Raises
    :class:`PoisonMessage` for an event whose subject is not its item. ``cache`` is the service's
    (:class:`StoreCache`: statements and label keys kept between units of work); without, it is slower.
    """
    item: ClassifiedFeedback = event.data
    if event.subject != str(item.feedback_id):
        raise PoisonMessage(f"subject {event.subject!r} is not the item's feedback_id {item.feedback_id}")
    if await erased_among(uow.session, erasure_tables, [str(item.feedback_id)]):
        return False  # erased (privacy.v1) before this event got here: never store it again
    feedback = FeedbackRepository(uow.session)
    stored = await feedback.stored(str(item.feedback_id))
    if not should_apply(stored[0] if stored else None, item.revision):
        return False
    old = ClassifiedFeedback.model_validate(stored[1]) if stored else None
    await feedback.replace(feedback_row(item), theme_rows(item), exists=stored is not None)

    rollups = RollupRepository(uow.session, cache)
    await rollups.add(rollup_changes(old, item))
    await rollups.name_themes(((t.id, t.name) for t in item.themes if t.id.strip()), item.created_at)
    await rollups.mark_dirty(bucket_start(i.created_at, "hour") for i in (old, item) if i is not None)
    old_cluster = old.cluster.id if old is not None and old.cluster is not None else None
    new_cluster = item.cluster.id if item.cluster is not None else None
    await rollups.move_cluster(old_cluster, new_cluster, item.cluster.terms if item.cluster else [], item.created_at)

    insights = InsightRepository(uow.session)
    insight_id = str(urgent_insight_id(item.feedback_id))
    now = datetime.now(UTC)
    insight = urgent_insight(item, already_flagged=False, now=now)
    if insight is not None and await insights.exists(insight_id):  # only an urgent item asks the store
        insight = None
    if insight is not None:
        await insights.add(insight_id, insight.type, insight.severity, insight.theme, insight.created_at,
                           insight.model_dump(mode="json", by_alias=True))
        uow.publish(INSIGHTS, insight, event_id=insight_id)
    return True


async def apply_release(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """Store a ``releases.v1`` marker; the same ``release_id`` again replaces it (a corrected marker)."""
    release: Release = event.data
    await ReleaseRepository(uow.session).upsert(release.release_id, release.version, release.kind, release.service,
                                                release.released_at, release.model_dump(mode="json"))


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
