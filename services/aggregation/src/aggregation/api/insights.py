"""``GET /v1/insights``: the insights aggregation has raised, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from aggregation.api.cursors import next_cursor, time_key
from aggregation.api.deps import QueriesDep
from aggregation.domain.filters import InsightFilter
from feedbackloop.contracts import Insight
from feedbackloop.http import ReadKey

router = APIRouter(prefix="/v1", tags=["insights"])


class InsightPage(BaseModel):
    items: list[Insight]
    next_cursor: str | None


@router.get("/insights", response_model=InsightPage, summary="Insights, newest first",
            description="Each item is the `insights.v1` data as published.",
            responses={400: {"description": "Malformed cursor"},
                       422: {"description": "A filter is unknown or invalid; `errors` names it"}})
async def list_insights(_key: ReadKey, queries: QueriesDep,
                        filters: Annotated[InsightFilter, Query()]) -> InsightPage:
    page = await queries.list_insights(filters, time_key(filters.cursor))
    return InsightPage.model_validate({"items": page.items, "next_cursor": next_cursor(page.next_key)})
