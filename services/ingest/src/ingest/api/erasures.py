"""``POST /v1/erasures`` (erase one customer's or one author's feedback, everywhere) and ``GET /v1/erasures/{id}``."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from feedbackloop.http import AdminKey, ProblemError
from ingest.api.deps import PolicyDep, UowDep
from ingest.domain.erasure import NothingToErase, erasure_target
from ingest.service import erase, erasure_status

router = APIRouter(prefix="/v1", tags=["privacy"])


class ErasureIn(BaseModel):
    customer_id: str | None = Field(default=None, max_length=256,
                                    description="The account id, as sent in `customer.id`")
    author_email: str | None = Field(default=None, max_length=320,
                                     description="The author's address; only its keyed hash is kept")
    reason: str = Field(default="", max_length=1000)


class ErasureAccepted(BaseModel):
    request_id: uuid.UUID
    items: int = Field(description="Items found and erased in ingest's store; the other services follow")


class ErasureOut(BaseModel):
    request_id: uuid.UUID
    requested_at: datetime
    requested_by: str
    customer_id: str | None
    author_email_hash: str | None
    reason: str
    items: int
    feedback_ids: list[uuid.UUID]
    published: bool = Field(description="The privacy.v1 event reached the broker (the other services then erase)")
    published_at: datetime | None


@router.post(
    "/erasures",
    status_code=202,
    response_model=ErasureAccepted,
    summary="Erase one customer's or one author's feedback from every service (admin)",
    description="Blanks the matching items in ingest's store, records the request and queues a `privacy.v1` "
    "event, in one transaction; classification, aggregation and notification erase their copies when they read "
    "it. Give `customer_id`, `author_email`, or both.",
    responses={422: {"description": "Neither `customer_id` nor `author_email` was given; `errors` names them"}},
)
async def post_erasure(body: ErasureIn, key: AdminKey, uow: UowDep, policy: PolicyDep) -> ErasureAccepted:
    try:
        target = erasure_target(body.customer_id, body.author_email, policy.pseudonyms)
    except NothingToErase as exc:
        errors = [{"field": field, "message": str(exc), "type": "missing"} for field in ("customer_id", "author_email")]
        raise ProblemError(f"Missing: customer_id or author_email. Nothing was erased: {exc}.", status=422,
                           title="Invalid request", errors=errors) from exc
    event = await erase(uow, target, reason=body.reason, requested_by=f"{key.name} ({key.id})")
    return ErasureAccepted(request_id=event.request_id, items=len(event.feedback_ids))


@router.get("/erasures/{request_id}", response_model=ErasureOut, summary="An erasure request and its progress (admin)",
            responses={404: {"description": "No such request"}})
async def get_erasure(request_id: uuid.UUID, key: AdminKey, uow: UowDep) -> ErasureOut:
    found = await erasure_status(uow, request_id)
    if found is None:
        raise ProblemError(f"No erasure request {request_id}.", status=404, title="Not found")
    return ErasureOut(**{**asdict(found), "items": len(found.feedback_ids)})
