"""Classification use cases: label a raw item (store + outbox in the consumer's unit of work), or preview labels.

The classifier is built once at start (:func:`build_classifier`) from the taxonomy file and the settings, and
handed to the consumer handler and the HTTP routes; nothing reads the taxonomy file again while running.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from classification.config import ClassificationSettings
from classification.domain.heads import LinearHead, ThemeModel
from classification.domain.pipeline import Labels, Models, classify, reading
from classification.domain.taxonomy import Taxonomy, TaxonomyError, taxonomy_from_yaml
from classification.embedding import Encoder
from classification.models import HEADS_FILE
from classification.store.repository import ClassificationRepository
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, Customer, RawFeedback
from feedbackloop.db import UnitOfWork

__all__ = ["Classifier", "PreviewItem", "build_classifier", "classified_event_id", "classify_item", "load_taxonomy",
           "preview"]


def classified_event_id(feedback_id: uuid.UUID, revision: int) -> str:
    """The id of the event that publishes ``revision`` of an item: re-running never publishes it twice."""
    return str(uuid.uuid5(feedback_id, f"feedback.classified.v1/{revision}"))


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

    def label(self, text: str, *, subject: str | None = None, customer: Customer | None = None,
              language_hint: str | None = None) -> Labels:
        return self.label_many([PreviewItem(text, subject, customer, language_hint)])[0]

    def label_many(self, items: Sequence[PreviewItem]) -> list[Labels]:
        """Labels of each item, in order; the embeddings of the whole batch are computed in one go."""
        readings = [reading(i.text, i.subject) for i in items]
        vectors = self.encoder.encode(readings) if self.encoder is not None else None
        return [classify(i.text, subject=i.subject, customer=i.customer, language_hint=i.language,
                         taxonomy=self.taxonomy, high_value_mrr=self.high_value_mrr,
                         priority_plans=self.priority_plans,
                         vector=None if vectors is None else vectors[n], models=self.models)
                for n, i in enumerate(items)]

    def with_taxonomy(self, taxonomy: Taxonomy) -> Classifier:
        """The same classifier matching against another taxonomy (its theme model rebuilt)."""
        models = self.models
        if models is not None and self.encoder is not None:
            models = replace(models, themes=build_theme_model(self.encoder, taxonomy))
        return replace(self, taxonomy=taxonomy, models=models)


def build_theme_model(encoder: Encoder, taxonomy: Taxonomy) -> ThemeModel:
    """The embedding theme matcher of ``taxonomy``: each theme's name + description, then its examples."""
    prototypes = {t.id: encoder.encode(t.prototype_texts()) for t in taxonomy.themes}
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
        encoder = Encoder(settings.model_dir, quantized=settings.quantized)
    models = load_models(encoder, taxonomy) if encoder is not None else None
    classifier = Classifier(taxonomy, high_value_mrr=settings.high_value_mrr,
                            priority_plans=tuple(settings.priority_plans), encoder=encoder, models=models)
    classifier.label("Warming up: the language and sentiment models load on first use.")
    return classifier


async def classify_item(uow: UnitOfWork, raw: RawFeedback, classifier: Classifier) -> ClassifiedFeedback | None:
    """Label a raw item, store it as revision 1 and raise its ``feedback.classified.v1`` event.

    An item already classified (any revision) is left alone and nothing is published: a redelivered or
    replayed raw event must not overwrite a human correction. Returns the published data, or None.
    """
    repo = ClassificationRepository(uow.session)
    if await repo.get(str(raw.feedback_id)) is not None:
        return None
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
    })
    await repo.upsert(item, created_at=now)
    uow.publish(FEEDBACK_CLASSIFIED, item, event_id=classified_event_id(raw.feedback_id, item.revision))
    return item


async def preview(classifier: Classifier, items: Sequence[PreviewItem]) -> list[Labels]:
    """The labels each item would get; stores and publishes nothing."""
    return await asyncio.to_thread(classifier.label_many, items)
