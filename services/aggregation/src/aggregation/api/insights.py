"""``GET /v1/insights``: the insights aggregation has raised, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from aggregation.api.deps import QueriesDep, UowDep
from aggregation.domain.filters import InsightFilter
from aggregation.service import acknowledge_insight
from feedbackloop.contracts import Insight
from feedbackloop.http import NotFound, ReadKey, WriteKey, cursor_key, keyset_page

router = APIRouter(prefix="/v1", tags=["insights"])


class InsightPage(BaseModel):
    items: list[Insight]
    next_cursor: str | None


@router.get("/insights", response_model=InsightPage, summary="Insights, newest first",
            description="Each item is the `insights.v1` data as last published: a spike whose episode grew "
            "shows its latest `revision` (figures, evidence, `updated_at`), in the place it was first raised.",
            responses={400: {"description": "Malformed cursor"},
                       422: {"description": "A filter is unknown or invalid; `errors` names it"}})
async def list_insights(_key: ReadKey, queries: QueriesDep,
                        filters: Annotated[InsightFilter, Query()]) -> InsightPage:
    rows = await queries.list_insights(filters, cursor_key(filters.cursor, datetime, str), filters.limit + 1)
    page, next_cursor = keyset_page(rows, filters.limit, key=lambda r: (r.created_at, r.id))
    return InsightPage.model_validate({"items": [r.data for r in page], "next_cursor": next_cursor})


class Acknowledged(BaseModel):
    insight_id: str
    acknowledged: bool = True


@router.post("/insights/{insight_id}/ack", response_model=Acknowledged, summary="Acknowledge an insight",
             description="Marks the insight handled; `GET /v1/insights?acknowledged=false` lists the open ones. "
             "Acknowledging twice keeps the first acknowledgement.",
             responses={404: {"description": "No such insight"}})
async def ack_insight(insight_id: uuid.UUID, key: WriteKey, uow: UowDep) -> Acknowledged:
    async with uow() as unit:
        data = await acknowledge_insight(unit, str(insight_id), key.name)
        await unit.commit()
    if data is None:
        raise NotFound(f"No insight {insight_id}.")
    return Acknowledged(insight_id=str(insight_id))
