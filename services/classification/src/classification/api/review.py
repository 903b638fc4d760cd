"""``GET /v1/review``: the items whose labels the classifier is unsure of, for a person to confirm or correct.

An item is queued when one of its labels' calibrated confidence is under its threshold
(``CLASSIFICATION_REVIEW_THRESHOLDS``); ``review_reasons`` says which. Correcting it (``POST
/v1/feedback/{id}/labels``) takes it off the queue and teaches the classifier. Oldest first, keyset-paginated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query

from classification.api.deps import ReadSessionsDep
from classification.service import review_queue
from feedbackloop.contracts.events import Kind
from feedbackloop.http import ReadKey, cursor_key

router = APIRouter(prefix="/v1", tags=["review"])


@router.get("/review", summary="Items waiting for review (unsure labels)",
            description="Items marked `needs_review`, oldest first: `{items, next_cursor, total}` where `total` "
            "is the whole queue's length. Filter by the unsure label (`reason`) or by `kind`.",
            responses={400: {"description": "Malformed cursor"}})
async def get_review(_key: ReadKey, sessions: ReadSessionsDep,
                     limit: int = Query(50, ge=1, le=200, description="Items per page"),
                     cursor: str | None = Query(None, max_length=512,
                                                description="`next_cursor` of the previous page"),
                     reason: Literal["sentiment", "kind", "themes"] | None = Query(
                         None, description="Only items unsure of this label"),
                     kind: Kind | None = Query(None, description="Only items of this kind")) -> dict[str, Any]:
    after = cursor_key(cursor, datetime, str)
    page = await review_queue(sessions, after=after, limit=limit, reason=reason, kind=kind)
    return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor,
            "total": page.total}
