"""The classifier in force: the pure pipeline bound to a taxonomy, the loaded encoder and heads, and the examples
the team taught — built once at start (:func:`build_classifier`) and replaced whole, never mutated.

:class:`Classifier` is thread-safe (it holds no mutable state of its own; the encoder's text cache is locked). It
embeds a batch in as few model calls as it can: every item's reading at once, then the sentences of the items
whose kind needs them (:func:`~classification.domain.pipeline.parts_needed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from classification.config import ClassificationSettings
from classification.domain.calibration import DEFAULT_REVIEW_THRESHOLDS
from classification.domain.documents import Document, split_document
from classification.domain.heads import LinearHead, ThemeModel
from classification.domain.memory import ExampleMemory, LearnedExample
from classification.domain.pipeline import Labels, Models, classify, parts_needed, reading, whole_kind_proba
from classification.domain.taxonomy import Taxonomy, TaxonomyError, taxonomy_from_yaml
from classification.model import HEADS_FILE
from classification.model.embedding import Encoder
from feedbackloop.contracts import Customer

__all__ = ["Classifier", "PreviewItem", "build_classifier", "build_theme_model", "load_models", "load_taxonomy"]


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate a taxonomy file; ``TaxonomyError`` (naming the file) or ``OSError`` otherwise."""
    try:
        return taxonomy_from_yaml(path.read_text(encoding="utf-8"))
    except TaxonomyError as exc:
        raise TaxonomyError([f"{path}: {p}" for p in exc.problems]) from exc


@dataclass(frozen=True)
class PreviewItem:
    text: str
    subject: str | None = None
    customer: Customer | None = None
    language: str | None = None


@dataclass(frozen=True)
class Classifier:
    """The pipeline bound to one taxonomy, the learned models and the urgency settings.

    Thread-safe: it holds no mutable state of its own (the encoder's text cache is locked). ``encoder`` None means
    the rules alone (``CLASSIFICATION_EMBEDDINGS=false``).
    """

    taxonomy: Taxonomy
    high_value_mrr: float = 1000.0
    priority_plans: tuple[str, ...] = field(default=("enterprise",))
    encoder: Encoder | None = None
    models: Models | None = None
    learned: tuple[LearnedExample, ...] = ()
    review_thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_REVIEW_THRESHOLDS))

    def label(self, text: str, *, subject: str | None = None, customer: Customer | None = None,
              language_hint: str | None = None) -> Labels:
        return self.label_many([PreviewItem(text, subject, customer, language_hint)])[0]

    def label_many(self, items: Sequence[PreviewItem]) -> list[Labels]:
        """Labels of each item, in order. The embeddings of the whole batch — each item's reading and, for items
        of several sentences, each sentence (the kind is decided part by part) — are computed in one call."""
        return self.read_many(items)[0]

    def read_many(self, items: Sequence[PreviewItem]) -> tuple[list[Labels], np.ndarray | None]:
        """:meth:`label_many` and the embedding each item was read by (rows in order; None without the encoder):
        the consumer labels a whole batch at once and keeps the vectors for the emerging-theme clusters."""
        documents = [split_document(i.text, i.subject) for i in items]
        vectors, part_vectors = self._embed(items, documents)
        labels = [classify(i.text, subject=i.subject, customer=i.customer, language_hint=i.language,
                           taxonomy=self.taxonomy, high_value_mrr=self.high_value_mrr,
                           priority_plans=self.priority_plans,
                           vector=None if vectors is None else vectors[n], models=self.models,
                           document=documents[n], part_vectors=None if part_vectors is None else part_vectors[n],
                           review_thresholds=self.review_thresholds)
                  for n, i in enumerate(items)]
        return labels, vectors

    def warm(self, items: Sequence[PreviewItem]) -> None:
        """Embed every text :meth:`label_many` would read for ``items`` in as few model calls as it would, so that
        labelling them one at a time afterwards finds each vector in the encoder's cache (the consumer's batch
        preparation)."""
        if items:
            self._embed(items, [split_document(i.text, i.subject) for i in items])

    def _embed(self, items: Sequence[PreviewItem], documents: Sequence[Document],
               ) -> tuple[np.ndarray | None, list[np.ndarray | None] | None]:
        """Each item's reading in one call; then, in a second call, the parts of the documents whose kind needs
        them (:func:`~classification.domain.pipeline.parts_needed`)."""
        if self.encoder is None:
            return None, None
        readings = [reading(i.text, i.subject) for i in items]
        vectors = self.encoder.encode(readings)
        head = self.models.kind if self.models is not None else None
        texts: list[str] = []
        spans: list[tuple[int, int] | None] = []
        for n, document in enumerate(documents):
            whole = whole_kind_proba(head, vectors[n], readings[n]) if head is not None and \
                len(document.parts) > 1 else None
            if parts_needed(document, whole):
                spans.append((len(texts), len(texts) + len(document.parts)))
                texts.extend(document.parts)
            else:
                spans.append(None)
        encoded = self.encoder.encode(texts) if texts else None
        parts = [None if span is None or encoded is None else encoded[span[0]:span[1]] for span in spans]
        return vectors, parts

    def with_taxonomy(self, taxonomy: Taxonomy) -> Classifier:
        """The same classifier matching against another taxonomy (its theme model rebuilt)."""
        models = self.models
        if models is not None and self.encoder is not None:
            models = replace(models, themes=build_theme_model(self.encoder, taxonomy, self.learned))
        return replace(self, taxonomy=taxonomy, models=models)

    def with_examples(self, learned: Sequence[LearnedExample]) -> Classifier:
        """The same classifier having learned ``learned`` (all corrections so far): its memory and themes rebuilt.

        Without the embedding model (rules alone) nothing can be learned and the examples are only kept.
        """
        learned = tuple(learned)
        models = self.models
        if models is not None and self.encoder is not None:
            vectors = self.encoder.encode([e.text for e in learned]) if learned else None
            memory = ExampleMemory.build(learned, vectors) if vectors is not None else ExampleMemory.empty()
            models = replace(models, memory=memory,
                             themes=build_theme_model(self.encoder, self.taxonomy, learned))
        return replace(self, models=models, learned=learned)

    def vector_of(self, text: str, subject: str | None = None) -> np.ndarray | None:
        """The embedding the classifier read the item by (cached), or None without the embedding model."""
        return None if self.encoder is None else self.encoder.encode([reading(text, subject)])[0]


def build_theme_model(encoder: Encoder, taxonomy: Taxonomy, learned: Sequence[LearnedExample] = ()) -> ThemeModel:
    """The embedding theme matcher of ``taxonomy``: each theme's name + description, its examples, then the texts
    people corrected to that theme (corrections naming a theme the taxonomy no longer has are ignored)."""
    corrected: dict[str, list[str]] = {}
    for example in learned:
        for theme_id in example.themes:
            corrected.setdefault(theme_id, []).append(example.text)
    prototypes = {t.id: encoder.encode([*t.prototype_texts(), *corrected.get(t.id, [])]) for t in taxonomy.themes}
    return ThemeModel.build(prototypes)


def load_models(encoder: Encoder, taxonomy: Taxonomy, heads_file: Path = HEADS_FILE) -> Models:
    """The shipped kind / sentiment heads and the taxonomy's theme model; a missing heads file means rules."""
    heads: dict[str, LinearHead] = {}
    if heads_file.exists():
        with np.load(heads_file) as arrays:
            for name in ("kind", "sentiment"):
                if f"{name}.classes" in arrays:
                    heads[name] = LinearHead.from_arrays(arrays, name)
    return Models(embedding=encoder.name, kind=heads.get("kind"), sentiment=heads.get("sentiment"),
                  themes=build_theme_model(encoder, taxonomy))


def build_classifier(settings: ClassificationSettings, encoder: Encoder | None = None) -> Classifier:
    """Load the taxonomy and the models named by the settings and warm them, so the first event is not slow.

    ``encoder`` lets a caller share one loaded model (tests); otherwise one is loaded here when
    ``settings.embeddings`` is on. :class:`ModelUnavailable` when the model can be neither loaded nor exported.
    """
    taxonomy = load_taxonomy(settings.taxonomy_file)
    if encoder is None and settings.embeddings:
        encoder = Encoder(settings.model_dir, quantized=settings.quantized, threads=settings.encoder_threads)
    models = load_models(encoder, taxonomy) if encoder is not None else None
    classifier = Classifier(taxonomy, high_value_mrr=settings.high_value_mrr,
                            priority_plans=tuple(settings.priority_plans), encoder=encoder, models=models,
                            review_thresholds=dict(settings.review_thresholds))
    classifier.label("Warming up: the language and sentiment models load on first use.")
    return classifier
