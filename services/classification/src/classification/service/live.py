"""The classifier in force (:class:`LiveState`) and :func:`restore`, which puts in force what the store remembers.

The classifier is built once at start (:mod:`classification.model.classifier`) from the taxonomy file and the
settings; then :func:`restore` puts in force the newest taxonomy put through the API, the corrections as examples
and the emerging-theme clusters. The consumer and the HTTP routes read ``live.classifier`` for each batch /
request; a taxonomy change or a learned correction swaps it whole (a new immutable :class:`Classifier`), so a batch
in flight finishes with the classifier it started with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import numpy as np

from classification.domain.clusters import ClusterIndex, ClusterState
from classification.domain.corrections import example_of
from classification.domain.memory import LearnedExample
from classification.domain.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy
from classification.model.classifier import Classifier
from classification.store.repository import ClusterRepository, CorrectionRepository, TaxonomyRepository
from classification.worker import Learner
from feedbackloop.db import UnitOfWork

__all__ = ["LiveState", "restore"]


class LiveState:
    """The classifier in force and the emerging-theme clusters, shared by the consumer and the HTTP routes.

    ``classifier`` is replaced whole (never mutated); :meth:`swap` serializes changes so two corrections at once
    both end up learned. ``clusters`` is the in-memory index of the ``theme_clusters`` table (loaded by
    :func:`restore`); the store stays the truth — a copy of the service sees another copy's new clusters after
    its next start. ``learner`` is the background loop that learns corrections (:mod:`classification.worker`).
    """

    def __init__(self, classifier: Classifier, clusters: ClusterIndex | None = None) -> None:
        self.classifier = classifier
        self.clusters = clusters or ClusterIndex()
        self.ready = asyncio.Event()
        self.learner = Learner(self)
        self._lock = asyncio.Lock()

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
        """Queue a correction's example for the learner; :attr:`learned_count` tells when it is in force."""
        self.learner.learn(example)

    @property
    def learned_count(self) -> int:
        return len(self.classifier.learned)

    async def close(self) -> None:
        """Stop the learner (the examples are in the store: the next start learns them)."""
        await self.learner.close()


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
