"""``POST /v1/feedback``: one item or a JSON list of up to 1,000, answered 202 once durably stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from feedbackloop.http import ProblemError, WriteKey
from ingest.api.deps import LimitsDep, SettingsDep, UowDep
from ingest.domain.feedback import FeedbackIn
from ingest.service import accept_feedback

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
        422: {"description": "A field is missing or invalid; `errors` names it"},
        429: {"description": "Too many requests with this API key; see Retry-After"},
    },
)
async def post_feedback(
    request: Request, key: WriteKey, uow: UowDep, settings: SettingsDep, limits: LimitsDep
) -> Accepted:
    limits.check_key(key.id)
    items = _parse(await request.body(), settings.max_batch_items)
    return Accepted(feedback_ids=await accept_feedback(uow, items, duplicate_window=settings.duplicate_window))


def _parse(body: bytes, max_items: int) -> list[FeedbackIn]:
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProblemError(
            "The request body is not valid JSON.",
            status=400,
            title="Malformed JSON",
            errors=[{"field": "body", "message": str(exc)}],
        ) from exc
    single = isinstance(payload, dict)
    entries = [payload] if single else payload
    if not isinstance(entries, list) or not entries:
        raise ProblemError(
            "Send one feedback object or a non-empty JSON list of them.",
            status=422,
            title="Invalid request",
            errors=[{"field": "body", "message": "expected an object or a list"}],
        )
    if len(entries) > max_items:
        raise ProblemError(
            f"A batch holds at most {max_items} items; this one has {len(entries)}.",
            status=413,
            title="Batch too large",
            errors=[{"field": "body", "message": f"more than {max_items} items"}],
        )
    items: list[FeedbackIn] = []
    errors: list[dict[str, str]] = []
    for index, entry in enumerate(entries):
        try:
            items.append(_item.validate_python(entry))
        except ValidationError as exc:
            prefix = "" if single else f"{index}."
            errors += [
                {
                    "field": prefix + ".".join(str(p) for p in e["loc"]) if e["loc"] else prefix.rstrip(".") or "body",
                    "message": e["msg"],
                    "type": e["type"],
                }
                for e in exc.errors()
            ]
    if errors:
        named = ", ".join(dict.fromkeys(e["field"] for e in errors[:5]))
        raise ProblemError(
            f"Invalid value for: {named}. Nothing was stored.", status=422, title="Invalid request", errors=errors[:100]
        )
    return items
