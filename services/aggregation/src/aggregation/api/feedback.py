"""``GET /v1/feedback`` and ``GET /v1/feedback/{id}``: the latest revision of classified items."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from aggregation.api.deps import QueriesDep
from aggregation.domain.filters import FeedbackFilter
from feedbackloop.contracts import ClassifiedFeedback
from feedbackloop.http import NotFound, ReadKey, cursor_key, keyset_page

router = APIRouter(prefix="/v1", tags=["feedback"])

_INVALID: dict[int | str, dict[str, Any]] = {400: {"description": "Malformed cursor"},
            422: {"description": "A filter is unknown or invalid; `errors` names it"}}


class FeedbackPage(BaseModel):
    items: list[ClassifiedFeedback]
    next_cursor: str | None


@router.get("/feedback", response_model=FeedbackPage, summary="List classified feedback, newest first",
            description="Every given filter must match. `q` is a case-insensitive substring of the text; "
            "`from` ≤ created_at < `to`. Each item is the latest `feedback.classified.v1` data of the item.",
            responses=_INVALID)
async def list_feedback(_key: ReadKey, queries: QueriesDep,
                        filters: Annotated[FeedbackFilter, Query()]) -> FeedbackPage:
    rows = await queries.list_feedback(filters, cursor_key(filters.cursor, datetime, str), filters.limit + 1)
    page, next_cursor = keyset_page(rows, filters.limit, key=lambda r: (r.created_at, r.id))
    return FeedbackPage.model_validate({"items": [r.data for r in page], "next_cursor": next_cursor})


@router.get("/feedback/{feedback_id}", response_model=ClassifiedFeedback, summary="One classified item",
            responses={404: {"description": "No such item"}})
async def get_feedback(feedback_id: uuid.UUID, _key: ReadKey, queries: QueriesDep) -> ClassifiedFeedback:
    data = await queries.feedback(str(feedback_id))
    if data is None:
        raise NotFound(f"No classified feedback item {feedback_id}.")
    return ClassifiedFeedback.model_validate(data)
