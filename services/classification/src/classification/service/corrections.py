"""A person's correction of an item (``POST /v1/feedback/{id}/labels``): load the item, merge the person's labels
over it (:func:`classification.domain.corrections.corrected`), store and re-publish it, then learn from it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from classification.domain.corrections import UnknownThemes, corrected, example_of, teaches
from classification.domain.pipeline import reading
from classification.service.classify import classified_event_id
from classification.service.live import LiveState
from classification.store.models import Correction
from classification.store.repository import ClassificationRepository, CorrectionRepository
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback
from feedbackloop.db import UnitOfWorkFactory

__all__ = ["CorrectionRejected", "UnknownFeedback", "correct_item"]


class UnknownFeedback(LookupError):
    """No classified item has this id."""


class CorrectionRejected(ValueError):
    """A correction names something that does not exist (``field`` says which part), or lost a race."""

    def __init__(self, message: str, field: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.conflict = conflict


async def correct_item(units: UnitOfWorkFactory, live: LiveState, feedback_id: str, labels: Mapping[str, Any],
                       *, who: str, key_id: str) -> ClassifiedFeedback:
    """A person's correction: store it, re-publish the item as ``revision`` + 1 with ``corrected_by``, learn it.

    ``labels`` holds any of ``kind``, ``sentiment`` (a label), ``themes`` (ids of the taxonomy in force),
    ``urgency``, ``product_area`` — already type-checked by the caller; how they merge is
    :func:`~classification.domain.corrections.corrected`. The event id is ``classified_event_id(feedback_id,
    revision)``, written to the outbox in the same transaction.
    :class:`UnknownFeedback`; :class:`CorrectionRejected` for an unknown theme id or a concurrent change.
    """
    taxonomy = live.classifier.taxonomy
    async with units() as uow:
        repo = ClassificationRepository(uow.session)
        row = await repo.get(feedback_id)
        if row is None:
            raise UnknownFeedback(feedback_id)
        current = ClassifiedFeedback.model_validate(row.item)
        now = datetime.now(UTC)
        try:
            item = corrected(current, labels, taxonomy, who=who, now=now)
        except UnknownThemes as exc:
            raise CorrectionRejected(str(exc), "themes") from exc
        if not await repo.upsert(item, created_at=row.created_at):
            raise CorrectionRejected("the item changed while it was being corrected; send the correction again",
                                     "revision", conflict=True)
        text = reading(current.text, current.subject)
        await CorrectionRepository(uow.session).add(Correction(
            feedback_id=feedback_id, revision=item.revision, labels=dict(labels), text=text, corrected_by=who,
            key_id=key_id, created_at=now))
        uow.publish(FEEDBACK_CLASSIFIED, item, event_id=classified_event_id(item.feedback_id, item.revision))
        await uow.commit()
    if teaches(text, labels):
        live.learn(example_of(text, labels))
    return item
