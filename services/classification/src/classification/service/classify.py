"""Label a raw item (the consumer's use case) and preview labels (``POST /v1/classify``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from classification.domain.pipeline import Labels, reading
from classification.model.classifier import Classifier, PreviewItem
from classification.service.live import LiveState
from classification.store.models import erasure_tables
from classification.store.repository import ClassificationRepository, ClusterRepository
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, Cluster, RawFeedback
from feedbackloop.db import UnitOfWork
from feedbackloop.db.erasures import erased_among

__all__ = ["classified_event_id", "classify_item", "preview"]


def classified_event_id(feedback_id: uuid.UUID, revision: int) -> str:
    """The id of the event that publishes ``revision`` of an item: re-running never publishes it twice."""
    return str(uuid.uuid5(feedback_id, f"feedback.classified.v1/{revision}"))


async def classify_item(uow: UnitOfWork, raw: RawFeedback, live: LiveState | Classifier) -> ClassifiedFeedback | None:
    """Label a raw item, store it as revision 1 and raise its ``feedback.classified.v1`` event.

    An item already classified (any revision) is left alone and nothing is published: a redelivered or
    replayed raw event must not overwrite a human correction. An item erased before (``privacy.v1``) is too.
    An item with no theme joins an emerging-theme cluster (with a :class:`LiveState`; the cluster's row is
    written in the same transaction). Returns the published data, or None.
    """
    repo = ClassificationRepository(uow.session)
    if await repo.get(str(raw.feedback_id)) is not None:
        return None
    if await erased_among(uow.session, erasure_tables, [str(raw.feedback_id)]):
        return None  # erased (privacy.v1) before its raw event got here: never label or publish it
    state = live if isinstance(live, LiveState) else None
    classifier = live.classifier if isinstance(live, LiveState) else live
    # CPU-bound (a few ms, more for long texts): off the event loop so HTTP and other consumers keep going.
    labels = await asyncio.to_thread(classifier.label, raw.text, subject=raw.subject, customer=raw.customer,
                                     language_hint=raw.language)
    now = datetime.now(UTC)
    item = ClassifiedFeedback.model_validate({
        **raw.model_dump(),
        "revision": 1,
        "sentiment": labels.sentiment,
        "kind": labels.kind,
        "themes": labels.themes,
        "product_area": labels.product_area,
        "urgency": labels.urgency,
        "language": labels.language,
        "model": labels.model,
        "classified_at": now,
        "kind_confidence": labels.kind_confidence,
        "needs_review": labels.needs_review,
        "review_reasons": labels.review_reasons,
        "cluster": await _cluster(uow, state, classifier, raw, labels, now),
    })
    await repo.upsert(item, created_at=now)
    uow.publish(FEEDBACK_CLASSIFIED, item, event_id=classified_event_id(raw.feedback_id, item.revision))
    return item


async def _cluster(uow: UnitOfWork, state: LiveState | None, classifier: Classifier, raw: RawFeedback,
                   labels: Labels, now: datetime) -> Cluster | None:
    """The emerging-theme cluster of an item that fits no theme (None when it has a theme or nothing to read)."""
    if state is None or labels.themes or classifier.encoder is None:
        return None
    text = reading(raw.text, raw.subject)
    if not any(ch.isalpha() for ch in text):
        return None
    vector = await asyncio.to_thread(classifier.vector_of, raw.text, raw.subject)
    if vector is None:
        return None
    joined = state.clusters.assign(str(raw.feedback_id), vector, text)
    await ClusterRepository(uow.session).save(joined.id, [round(float(x), 6) for x in joined.centroid], joined.size,
                                              joined.term_counts, list(joined.terms), now)
    return Cluster(id=joined.id, terms=list(joined.terms), size=joined.size)


async def preview(classifier: Classifier, items: Sequence[PreviewItem]) -> list[Labels]:
    """The labels each item would get; stores and publishes nothing."""
    return await asyncio.to_thread(classifier.label_many, items)
