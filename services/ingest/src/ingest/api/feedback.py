"""``POST /v1/feedback``: one item or a JSON list of up to 1,000, answered 202 once durably stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, TypeAdapter

from feedbackloop.http import ProblemError, WriteKey
from feedbackloop.http.batch import parse_one_or_many
from ingest.api.deps import IntakeDep
from ingest.domain.feedback import FeedbackIn
from ingest.domain.reserved import reserved_source_reason
from ingest.service import NotStored, prepare_submission

router = APIRouter(prefix="/v1", tags=["feedback"])
_item = TypeAdapter(FeedbackIn)


class Accepted(BaseModel):
    feedback_ids: list[uuid.UUID]


@router.post(
    "/feedback",
    status_code=202,
    response_model=Accepted,
    summary="Submit feedback (one item or a list)",
    description="Stores each item durably, then answers 202 with the ids. Posting the same "
    "`(source, external_id)` again returns the same id and stores nothing new.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/FeedbackIn"},
                            {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/FeedbackIn"}},
                        ]
                    }
                }
            },
        }
    },
    responses={
        400: {"description": "Malformed JSON"},
        413: {"description": "Body or batch too large"},
        422: {"description": "A field is missing or invalid; `errors` names it. A `source` that has a signed "
              "webhook connector (`zendesk`, `intercom`, …) is reserved for it"},
        429: {"description": "Too many requests with this API key; see Retry-After"},
        503: {"description": "The store failed; nothing of the request was stored: retry (see Retry-After)"},
    },
)
async def post_feedback(request: Request, key: WriteKey, intake: IntakeDep) -> Accepted:
    intake.limits.check_key(key.id)
    received = datetime.now(UTC)
    items = _parse(await request.body(), intake.settings.max_batch_items)
    try:
        submission = await prepare_submission(items, received, policy=intake.policy)
        return Accepted(feedback_ids=await intake.committer.submit(submission))
    except NotStored as exc:
        raise not_stored() from exc


def not_stored() -> ProblemError:
    """503 for a request whose items could not be stored (nothing of it was): the sender should retry."""
    return ProblemError("The store failed to take this request; nothing of it was stored. Retry later.",
                        status=503, title="Not stored", headers={"Retry-After": "1"})


def _parse(body: bytes, max_items: int) -> list[FeedbackIn]:
    items, single = parse_one_or_many(body, _item, max_items=max_items, noun="feedback object",
                                      too_many_title="Batch too large", invalid_suffix=" Nothing was stored.")
    reserved = [(index, reason) for index, item in enumerate(items)
                if (reason := reserved_source_reason(item.source)) is not None]
    if reserved:
        errors = [{"field": "source" if single else f"{index}.source", "message": reason, "type": "reserved_source"}
                  for index, reason in reserved[:100]]
        raise ProblemError(f"Invalid value for: {', '.join(e['field'] for e in errors[:5])}. {reserved[0][1]} "
                           "Nothing was stored.", status=422, title="Invalid request", errors=errors)
    return items
