"""Classification use cases: label a raw item (store + outbox in the consumer's unit of work), or preview labels.

The classifier is built once at start (:func:`build_classifier`) from the taxonomy file and the settings, and
handed to the consumer handler and the HTTP routes; nothing reads the taxonomy file again while running.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from classification.config import ClassificationSettings
from classification.domain.pipeline import Labels, classify
from classification.domain.taxonomy import Taxonomy, TaxonomyError, taxonomy_from_yaml
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
class Classifier:
    """The pipeline bound to one taxonomy and the urgency settings; thread-safe (it holds no mutable state)."""

    taxonomy: Taxonomy
    high_value_mrr: float = 1000.0
    priority_plans: tuple[str, ...] = field(default=("enterprise",))

    def label(self, text: str, *, subject: str | None = None, customer: Customer | None = None,
              language_hint: str | None = None) -> Labels:
        return classify(text, subject=subject, customer=customer, language_hint=language_hint,
                        taxonomy=self.taxonomy, high_value_mrr=self.high_value_mrr,
                        priority_plans=self.priority_plans)


def build_classifier(settings: ClassificationSettings) -> Classifier:
    """Load the taxonomy named by the settings and warm the models, so the first event is not slow."""
    classifier = Classifier(load_taxonomy(settings.taxonomy_file), high_value_mrr=settings.high_value_mrr,
                            priority_plans=tuple(settings.priority_plans))
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


@dataclass(frozen=True)
class PreviewItem:
    text: str
    subject: str | None = None
    customer: Customer | None = None
    language: str | None = None


async def preview(classifier: Classifier, items: Sequence[PreviewItem]) -> list[Labels]:
    """The labels each item would get; stores and publishes nothing."""
    def run() -> list[Labels]:
        return [classifier.label(i.text, subject=i.subject, customer=i.customer, language_hint=i.language)
                for i in items]

    return await asyncio.to_thread(run)
