"""Classification's use cases, one module each; every write goes through a unit of work (results, the record of
the change and the outbox rows commit together), and the decisions are pure functions in :mod:`classification.domain`.

* :mod:`~classification.service.live` — the classifier in force (:class:`LiveState`) and :func:`restore` at start;
* :mod:`~classification.service.classify` — label a raw item (the consumer), preview labels (``POST /v1/classify``);
* :mod:`~classification.service.taxonomy` — put a taxonomy in force, list its versions;
* :mod:`~classification.service.corrections` — a person's correction: merge, store, re-publish, learn;
* :mod:`~classification.service.review` — the review queue;
* :mod:`~classification.service.erasure` — ``privacy.v1`` erasure requests;
* :mod:`~classification.service.reclassify` — replay stored history through the taxonomy and models in force
  (``feedbackloop reclassify``; imported by the command only).
"""

from classification.service.classify import (
    BatchLookup,
    BatchWrites,
    Reading,
    classified_event_id,
    classify_item,
    preview,
    read_batch,
)
from classification.service.corrections import CorrectionRejected, UnknownFeedback, correct_item
from classification.service.erasure import apply_erasure
from classification.service.live import LiveState, restore
from classification.service.review import ReviewPage, review_queue
from classification.service.taxonomy import TaxonomyVersionTaken, put_taxonomy, taxonomy_versions

__all__ = [
    "BatchLookup",
    "BatchWrites",
    "CorrectionRejected",
    "LiveState",
    "Reading",
    "ReviewPage",
    "TaxonomyVersionTaken",
    "UnknownFeedback",
    "apply_erasure",
    "classified_event_id",
    "classify_item",
    "correct_item",
    "preview",
    "put_taxonomy",
    "read_batch",
    "restore",
    "review_queue",
    "taxonomy_versions",
]
