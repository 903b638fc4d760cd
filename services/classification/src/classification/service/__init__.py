"""Classification use cases: label a raw item, preview labels, put a taxonomy in force, correct an item.

The classifier is built once at start (:mod:`classification.classifier`) from the taxonomy file and the settings;
then :func:`restore` puts in force what the store remembers (the newest taxonomy put through the API, the corrections
as examples, the emerging-theme clusters). :class:`LiveState` holds the classifier in force: the consumer and the
HTTP routes read ``live.classifier`` for each batch / request, and a taxonomy change or a correction swaps it
whole (a new immutable :class:`Classifier`), so a batch in flight finishes with the classifier it started with.
Every write goes through a unit of work: results, the record of the change and the outbox rows commit together.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classification.classifier import Classifier, PreviewItem
from classification.domain.clusters import ClusterIndex, ClusterState
from classification.domain.memory import LearnedExample
from classification.domain.pipeline import Labels, reading, score_for
from classification.domain.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy
from classification.store.models import Correction, erasure_tables, runtime_tables
from classification.store.repository import (
    ClassificationRepository,
    ClusterRepository,
    CorrectionRepository,
    ErasureRepository,
    TaxonomyRepository,
)
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, Cluster, ErasureRequest, RawFeedback
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory
from feedbackloop.db.erasures import erased_among, is_applied, record_applied
from feedbackloop.logs import get_logger

log = get_logger(__name__)

__all__ = [
    "CorrectionRejected",
    "LiveState",
    "ReviewPage",
    "TaxonomyVersionTaken",
    "UnknownFeedback",
    "apply_erasure",
    "classified_event_id",
    "classify_item",
    "correct_item",
    "example_of",
    "preview",
    "put_taxonomy",
    "restore",
    "review_queue",
    "taxonomy_versions",
]


def classified_event_id(feedback_id: uuid.UUID, revision: int) -> str:
    """The id of the event that publishes ``revision`` of an item: re-running never publishes it twice."""
    return str(uuid.uuid5(feedback_id, f"feedback.classified.v1/{revision}"))


class LiveState:
    """The classifier in force and the emerging-theme clusters, shared by the consumer and the HTTP routes.

    ``classifier`` is replaced whole (never mutated); :meth:`swap` serializes changes so two corrections at once
    both end up learned. ``clusters`` is the in-memory index of the ``theme_clusters`` table (loaded by
    :func:`restore`); the store stays the truth — a copy of the service sees another copy's new clusters after
    its next start.
    """

    def __init__(self, classifier: Classifier, clusters: ClusterIndex | None = None) -> None:
        self.classifier = classifier
        self.clusters = clusters or ClusterIndex()
        self.ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pending: list[LearnedExample] = []
        self._learner: asyncio.Task[None] | None = None

    async def swap(self, change: Callable[[Classifier], Classifier],
                   persist: Callable[[], Awaitable[None]] | None = None) -> Classifier:
        """Build a new classifier from the one in force (off the event loop), run ``persist`` (the store write
        that records the change), then put it in force. If building or ``persist`` raises, the old one stays."""
        async with self._lock:
            new = await asyncio.to_thread(change, self.classifier)
            if persist is not None:
                await persist()
            self.classifier = new
            return new

    def learn(self, example: LearnedExample) -> None:
        """Queue a correction's example; a background task folds every queued one into a new classifier (one
        rebuild for a burst of corrections). :attr:`learned_count` tells when it is in force."""
        self._pending.append(example)
        if self._learner is None or self._learner.done():
            self._learner = asyncio.create_task(self._learn_pending(), name="classification-learn")

    @property
    def learned_count(self) -> int:
        return len(self.classifier.learned)

    async def _learn_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.swap(lambda c, new=batch: c.with_examples([*c.learned, *new]))  # type: ignore[misc]
            except Exception:  # the correction is stored; the next start (restore) learns it
                log.exception("learning %d corrected examples failed", len(batch))

    async def close(self) -> None:
        """Stop the background learner (the examples are in the store: the next start learns them)."""
        if self._learner is not None and not self._learner.done():
            self._learner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._learner


def example_of(text: str, labels: Mapping[str, Any]) -> LearnedExample:
    """A correction as an example: its text with the kind, sentiment and themes the person set."""
    themes = labels.get("themes")
    return LearnedExample(text=text, kind=labels.get("kind"), sentiment=labels.get("sentiment"),
                          themes=tuple(themes) if isinstance(themes, list) else ())


async def restore(uow: UnitOfWork, live: LiveState) -> None:
    """Put in force what the store remembers: the newest taxonomy put through the API (else the file's stays),
    the corrections as examples, and the clusters. Raises what the store raises; a stored taxonomy that no longer
    validates (a stricter validator) is skipped in favour of the one from the file."""
    current = await TaxonomyRepository(uow.session).current()
    corrections = await CorrectionRepository(uow.session).all()
    clusters = await ClusterRepository(uow.session).all()
    taxonomy: Taxonomy | None = None
    if current is not None:
        try:
            taxonomy = parse_taxonomy(current.document)
        except TaxonomyError:
            taxonomy = None
    learned = [example_of(c.text, c.labels) for c in corrections]

    def rebuild(classifier: Classifier) -> Classifier:
        if taxonomy is not None:
            classifier = replace(classifier, taxonomy=taxonomy)
        return classifier.with_examples(learned) if (learned or taxonomy is not None) else classifier

    await live.swap(rebuild)
    live.clusters = ClusterIndex(ClusterState(c.id, np.asarray(c.centroid, dtype=np.float32), c.size,
                                              dict(c.term_counts), tuple(c.terms)) for c in clusters)
    live.ready.set()


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


class UnknownFeedback(LookupError):
    """No classified item has this id."""


class CorrectionRejected(ValueError):
    """A correction names something that does not exist (``field`` says which part), or lost a race."""

    def __init__(self, message: str, field: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.conflict = conflict


class TaxonomyVersionTaken(ValueError):
    """A different taxonomy was already put in force under this ``version``."""


async def put_taxonomy(units: UnitOfWorkFactory, live: LiveState, document: Any, changed_by: str) -> Taxonomy:
    """Validate ``document`` and put it in force: stored as a new version (who, when), then the running classifier
    switches to it. A document without ``version`` gets ``api-<n>``.

    :class:`TaxonomyError` (every problem named) or :class:`TaxonomyVersionTaken`: nothing changes, the old
    taxonomy stays in force. Putting the very document already stored under its version again changes nothing.
    """
    async with units() as uow:
        repo = TaxonomyRepository(uow.session)
        if isinstance(document, Mapping) and not document.get("version"):
            document = {**document, "version": f"api-{len(await repo.history()) + 1}"}
        taxonomy = parse_taxonomy(document)
        stored = await repo.by_version(taxonomy.version)
        if stored is not None and stored.document == document:
            return live.classifier.taxonomy if live.classifier.taxonomy.version == taxonomy.version else taxonomy
        if stored is not None or taxonomy.version == live.classifier.taxonomy.version:
            raise TaxonomyVersionTaken(f"version {taxonomy.version!r} is already in use; give the changed taxonomy "
                                       "a new `version`")
        clean = dict(document)

        async def persist() -> None:
            await repo.add(taxonomy.version, clean, changed_by, datetime.now(UTC))
            await uow.commit()

        await live.swap(lambda c: c.with_taxonomy(taxonomy), persist)
    return taxonomy


@dataclass(frozen=True)
class ReviewPage:
    items: list[ClassifiedFeedback]
    next_key: tuple[datetime, str] | None
    total: int


async def review_queue(sessions: async_sessionmaker[AsyncSession], *, after: tuple[datetime, str] | None,
                       limit: int, reason: str | None = None, kind: str | None = None) -> ReviewPage:
    """The items waiting for a person's look (``needs_review``), oldest first, a page at a time; ``total`` counts
    the whole queue (unfiltered). A correction of an item takes it off the queue. Reads only (a read session)."""
    async with sessions() as session:
        repo = ClassificationRepository(session)
        rows = list(await repo.review_page(after, limit + 1, reason=reason, kind=kind))
        total = await repo.review_count()
    more = len(rows) > limit
    rows = rows[:limit]
    next_key = (rows[-1].created_at, rows[-1].feedback_id) if more and rows else None
    return ReviewPage([ClassifiedFeedback.model_validate(r.item) for r in rows], next_key, total)


async def taxonomy_versions(units: UnitOfWorkFactory) -> list[dict[str, Any]]:
    """Every version put through the API, newest first: ``{seq, version, changed_by, changed_at}``."""
    async with units() as uow:
        return [{"seq": v.seq, "version": v.version, "changed_by": v.changed_by, "changed_at": v.changed_at}
                for v in await TaxonomyRepository(uow.session).history()]


async def correct_item(units: UnitOfWorkFactory, live: LiveState, feedback_id: str, labels: Mapping[str, Any],
                       *, who: str, key_id: str) -> ClassifiedFeedback:
    """A person's correction: store it, re-publish the item as ``revision`` + 1 with ``corrected_by``, learn it.

    ``labels`` holds any of ``kind``, ``sentiment`` (a label), ``themes`` (ids of the taxonomy in force),
    ``urgency``, ``product_area`` — already type-checked by the caller. Themes without ``product_area`` set the
    product area from the first theme's top-level ancestor; themes clear the ``cluster``. The event id is
    ``classified_event_id(feedback_id, revision)``, written to the outbox in the same transaction.
    :class:`UnknownFeedback`; :class:`CorrectionRejected` for an unknown theme id or a concurrent change.
    """
    taxonomy = live.classifier.taxonomy
    async with units() as uow:
        repo = ClassificationRepository(uow.session)
        row = await repo.get(feedback_id)
        if row is None:
            raise UnknownFeedback(feedback_id)
        current = ClassifiedFeedback.model_validate(row.item)
        changes: dict[str, Any] = {}
        if "kind" in labels:
            changes["kind"] = labels["kind"]
        if "sentiment" in labels:
            label = labels["sentiment"]
            changes["sentiment"] = {"label": label, "score": score_for(label, current.sentiment.score)}
        if "urgency" in labels:
            changes["urgency"] = labels["urgency"]
        if "themes" in labels:
            ids = list(dict.fromkeys(labels["themes"]))
            unknown = [t for t in ids if taxonomy.get(t) is None]
            if unknown:
                raise CorrectionRejected(f"unknown theme id(s) {', '.join(map(repr, unknown))} in taxonomy "
                                         f"{taxonomy.version!r}", "themes")
            changes["themes"] = [{"id": t, "name": taxonomy.get(t).name, "confidence": 1.0}  # type: ignore[union-attr]
                                 for t in ids]
            changes["product_area"] = taxonomy.root_of(ids[0]).id if ids else None
            if ids:
                changes["cluster"] = None
        if "product_area" in labels:
            changes["product_area"] = labels["product_area"]
        # A person has looked at the item: it leaves the review queue whatever they changed.
        changes.update(needs_review=False, review_reasons=[])
        now = datetime.now(UTC)
        item = ClassifiedFeedback.model_validate({**current.model_dump(), **changes, "revision": current.revision + 1,
                                                  "corrected_by": who, "classified_at": now})
        if not await repo.upsert(item, created_at=row.created_at):
            raise CorrectionRejected("the item changed while it was being corrected; send the correction again",
                                     "revision", conflict=True)
        text = reading(current.text, current.subject)
        await CorrectionRepository(uow.session).add(Correction(
            feedback_id=feedback_id, revision=item.revision, labels=dict(labels), text=text, corrected_by=who,
            key_id=key_id, created_at=now))
        uow.publish(FEEDBACK_CLASSIFIED, item, event_id=classified_event_id(item.feedback_id, item.revision))
        await uow.commit()
    if any(k in labels for k in ("kind", "sentiment", "themes")) and any(ch.isalnum() for ch in text):
        live.learn(example_of(text, labels))
    return item


async def apply_erasure(uow: UnitOfWork, request: ErasureRequest) -> int | None:
    """Erase the request's items here: their labels, human corrections and retained ``feedback.classified.v1``
    events; record the request and a tombstone per item (a raw event arriving later is then ignored).

    A request applied before changes nothing and returns None; otherwise how many classified items went. The
    clusters' term counts and the classifier's in-memory examples are not rewritten (anonymous aggregates; the
    examples are rebuilt from the store at the next start, without the erased corrections).
    """
    request_id = str(request.request_id)
    if await is_applied(uow.session, erasure_tables, request_id):
        return None
    ids = [str(f) for f in request.feedback_ids]
    gone = await ErasureRepository(uow.session).erase(ids, runtime_tables.outbox, FEEDBACK_CLASSIFIED.name)
    await record_applied(uow.session, erasure_tables, request_id, customer_id=request.customer_id,
                         feedback_ids=ids, at=datetime.now(UTC))
    log.info("erasure applied", request_id=request_id, items=gone)
    return gone
