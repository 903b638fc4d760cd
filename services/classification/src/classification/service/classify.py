"""Label a raw item (the consumer's use case) and preview labels (``POST /v1/classify``)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from classification.domain.pipeline import Labels
from classification.domain.pipeline import reading as classification_reading
from classification.model.classifier import Classifier, PreviewItem
from classification.service.live import LiveState
from classification.store.models import erasure_tables
from classification.store.repository import ClassificationRepository, ClusterRepository
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, Cluster, RawFeedback
from feedbackloop.db import UnitOfWork
from feedbackloop.db.erasures import erased_among

__all__ = ["BatchLookup", "BatchWrites", "Reading", "classified_event_id", "classify_item", "preview", "read_batch"]


def classified_event_id(feedback_id: uuid.UUID, revision: int) -> str:
    """The id of the event that publishes ``revision`` of an item: re-running never publishes it twice."""
    return str(uuid.uuid5(feedback_id, f"feedback.classified.v1/{revision}"))


@dataclass(frozen=True)
class Reading:
    """What the classifier made of one raw item ahead of its transaction: its labels and the embedding it was read
    by (None without the encoder)."""

    labels: Labels
    vector: np.ndarray | None


def read_batch(classifier: Classifier, raws: Sequence[RawFeedback]) -> list[Reading]:
    """Label every item of a batch in one pass (CPU-bound: call it off the event loop): all readings embedded in one
    encoder call, the sentences that need it in a second, then each item's labels — the same labels
    :func:`classify_item` would give each alone, since the consumer embedded a batch at once before too."""
    labels, vectors = classifier.read_many([PreviewItem(r.text, r.subject, r.customer, r.language) for r in raws])
    return [Reading(label, None if vectors is None else vectors[n]) for n, label in enumerate(labels)]


@dataclass(frozen=True)
class BatchLookup:
    """What the store held about a batch's items when its transaction began: the ones already classified and the
    ones erased, read in two statements for the whole batch instead of two per item.

    Only an item that occurs once in the batch is answered from it; an item seen again in the same batch (the
    earlier event may have just classified it — or been rolled back) is looked up in the store as before.
    """

    covered: frozenset[str]
    classified: frozenset[str]
    erased: frozenset[str]

    @classmethod
    async def load(cls, uow: UnitOfWork, feedback_ids: Sequence[str]) -> BatchLookup:
        counts = Counter(feedback_ids)
        once = [fid for fid, n in counts.items() if n == 1]
        classified = await ClassificationRepository(uow.session).stored_among(once) if once else set()
        erased = await erased_among(uow.session, erasure_tables, once) if once else set()
        return cls(frozenset(once), frozenset(classified), frozenset(erased))

    def settled(self, feedback_id: str) -> bool | None:
        """True: classified or erased before the batch (leave it alone); False: neither; None: ask the store (an
        item repeated in the batch, or not of it)."""
        if feedback_id not in self.covered:
            return None
        return feedback_id in self.classified or feedback_id in self.erased


class BatchWrites:
    """A batch's rows, staged by its handlers and written by :meth:`write` (the consumer's ``finish``, in the same
    transaction): all rows in one upsert, each cluster's last state in one. (The events are raised by each handler,
    in its span; the unit of work writes them all at commit.)

    Staging is a handler's last write, so an event whose savepoint rolls back has staged nothing. An item erased by
    a ``privacy.v1`` event later in the same batch is not written, as the erasure would have deleted it.
    """

    def __init__(self) -> None:
        self.items: dict[str, tuple[ClassifiedFeedback, datetime]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}

    def __contains__(self, feedback_id: str) -> bool:
        return feedback_id in self.items

    def stage(self, item: ClassifiedFeedback, created_at: datetime, cluster: dict[str, Any] | None) -> None:
        self.items[str(item.feedback_id)] = (item, created_at)
        if cluster is not None:
            self.clusters[cluster["id"]] = cluster

    async def write(self, uow: UnitOfWork) -> None:
        """Write what was staged (then nothing is staged)."""
        items, clusters = self.items, list(self.clusters.values())
        self.items, self.clusters = {}, {}
        erased = await erased_among(uow.session, erasure_tables, list(items)) if items else set()
        kept = [entry for feedback_id, entry in items.items() if feedback_id not in erased]
        await ClassificationRepository(uow.session).upsert_many(kept)
        await ClusterRepository(uow.session).save_many(clusters)


async def classify_item(uow: UnitOfWork, raw: RawFeedback, live: LiveState | Classifier, *,
                        reading: Reading | None = None, lookup: BatchLookup | None = None,
                        staged: BatchWrites | None = None) -> ClassifiedFeedback | None:
    """Label a raw item, store it as revision 1 and raise its ``feedback.classified.v1`` event.

    An item already classified (any revision) is left alone and nothing is published: a redelivered or
    replayed raw event must not overwrite a human correction. An item erased before (``privacy.v1``) is too.
    An item with no theme joins an emerging-theme cluster (with a :class:`LiveState`; the cluster's row is
    written in the same transaction). Returns the published data, or None.

    The consumer hands in what it computed for the whole batch: ``reading`` (:func:`read_batch`, with the
    classifier in force) and ``lookup`` (:meth:`BatchLookup.load` in this unit of work); without them the item is
    labelled and looked up alone. With ``staged`` the row, cluster and event are staged there for
    :meth:`BatchWrites.write` instead of written now.
    """
    feedback_id = str(raw.feedback_id)
    if staged is not None and feedback_id in staged:
        return None  # an earlier event of this batch classified it
    settled = lookup.settled(feedback_id) if lookup is not None else None
    if settled is None:
        if await ClassificationRepository(uow.session).stored_among([feedback_id]):
            return None
        if await erased_among(uow.session, erasure_tables, [feedback_id]):
            return None  # erased (privacy.v1) before its raw event got here: never label or publish it
    elif settled:
        return None
    state = live if isinstance(live, LiveState) else None
    classifier = live.classifier if isinstance(live, LiveState) else live
    if reading is None:
        # CPU-bound (a few ms, more for long texts): off the event loop so HTTP and other consumers keep going.
        reading = (await asyncio.to_thread(read_batch, classifier, [raw]))[0]
    labels = reading.labels
    now = datetime.now(UTC)
    cluster = _cluster(state, classifier, raw, reading, now)
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
        "cluster": None if cluster is None else Cluster(id=cluster["id"], terms=cluster["terms"],
                                                        size=cluster["size"]),
    })
    if staged is not None:
        staged.stage(item, now, cluster)
    else:
        if cluster is not None:
            await ClusterRepository(uow.session).save(cluster["id"], cluster["centroid"], cluster["size"],
                                                      cluster["term_counts"], cluster["terms"], now)
        await ClassificationRepository(uow.session).upsert(item, created_at=now)
    # Raised here, in the event's span and savepoint (the outbox rows are written at commit in any case).
    uow.publish(FEEDBACK_CLASSIFIED, item, event_id=classified_event_id(raw.feedback_id, item.revision))
    return item


def _cluster(state: LiveState | None, classifier: Classifier, raw: RawFeedback, reading: Reading,
             now: datetime) -> dict[str, Any] | None:
    """The emerging-theme cluster an item that fits no theme joins, as its row's new state (None when the item has
    a theme or nothing to read)."""
    if state is None or reading.labels.themes or classifier.encoder is None or reading.vector is None:
        return None
    text = classification_reading(raw.text, raw.subject)
    if not any(ch.isalpha() for ch in text):
        return None
    joined = state.clusters.assign(str(raw.feedback_id), reading.vector, text)
    return {"id": joined.id, "centroid": [round(float(x), 6) for x in joined.centroid], "size": joined.size,
            "term_counts": joined.term_counts, "terms": list(joined.terms), "now": now}


async def preview(classifier: Classifier, items: Sequence[PreviewItem]) -> list[Labels]:
    """The labels each item would get; stores and publishes nothing."""
    return await asyncio.to_thread(classifier.label_many, items)
