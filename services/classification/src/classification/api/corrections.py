"""``POST /v1/feedback/{id}/labels``: a person's correction of an item's labels.

Stored with who made it (the API key's name), re-published on ``feedback.classified.v1`` as ``revision`` + 1
with ``corrected_by``, and learned: the text becomes an example of the kind, sentiment and theme(s) set.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from classification.api.deps import LiveDep, UnitsDep
from classification.service import CorrectionRejected, UnknownFeedback, correct_item
from feedbackloop.contracts.events import Kind, Urgency
from feedbackloop.http import NotFound, ProblemError, WriteKey

router = APIRouter(prefix="/v1", tags=["corrections"])


class LabelsIn(BaseModel):
    """Any of the labels; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind | None = None
    sentiment: Any = Field(default=None, description="`positive`, `neutral`, `negative` or `mixed`",
                           json_schema_extra={"enum": ["positive", "neutral", "negative", "mixed"]})
    themes: list[str] | None = Field(default=None, max_length=20,
                                     description="Theme ids of the taxonomy in force; `[]` = no theme")
    urgency: Urgency | None = None
    product_area: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _something(self) -> LabelsIn:
        if self.sentiment is not None and self.sentiment not in ("positive", "neutral", "negative", "mixed"):
            raise ValueError("sentiment must be one of positive, neutral, negative, mixed")
        for name in ("kind", "sentiment", "themes", "urgency"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null (leave it out to keep it)")
        if not self.model_fields_set:
            raise ValueError("give at least one of kind, sentiment, themes, urgency, product_area")
        return self


@router.post("/feedback/{feedback_id}/labels", summary="Correct an item's labels",
             description="Stores the correction with the API key's name, re-publishes the item as `revision` + 1 "
             "with `corrected_by`, and learns from it. Returns the item as published.",
             responses={404: {"description": "No classified item has this id"},
                        409: {"description": "The item changed meanwhile; send again"},
                        422: {"description": "An invalid label or an unknown theme id; `errors` names it"}})
async def post_labels(feedback_id: str, body: LabelsIn, key: WriteKey, units: UnitsDep,
                      live: LiveDep) -> dict[str, Any]:
    labels = body.model_dump(include=body.model_fields_set)
    try:
        item = await correct_item(units, live, feedback_id, labels, who=key.name, key_id=key.id)
    except UnknownFeedback as exc:
        raise NotFound(f"No classified feedback item has id {feedback_id!r}.") from exc
    except CorrectionRejected as exc:
        raise ProblemError(f"{exc}.", status=409 if exc.conflict else 422,
                           title="Conflict" if exc.conflict else "Invalid correction",
                           errors=[{"field": exc.field, "message": str(exc)}]) from exc
    return item.model_dump(mode="json")
