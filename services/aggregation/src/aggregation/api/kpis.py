"""``GET /v1/kpis``: NPS, CSAT, volume, negative share and time to classify (of live items), against the previous
window; and ``loop``, closing the loop over the window (links, loops closed, times from first report)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from aggregation.api.deps import AnalyticsDep
from aggregation.domain.filters import KpiQuery
from aggregation.domain.kpis import backdated_definition
from aggregation.domain.loops import LoopKpis
from aggregation.domain.windows import ceil_hour, parse_length, window_ending
from aggregation.service.reports import kpi_report, loop_report
from aggregation.store.links import LinkQueries
from feedbackloop.http import ReadKey

router = APIRouter(prefix="/v1", tags=["kpis"])


class KpiValues(BaseModel):
    volume: int
    negative_share: float | None
    sentiment_avg: float | None
    nps: float | None = Field(description="(promoters - detractors) / responses x 100, from 0-10 `nps` ratings")
    nps_responses: int
    csat: float | None = Field(description="Share of 4-5 among 1-5 `csat` ratings, x 100")
    csat_responses: int
    median_time_to_classify_s: float | None = Field(
        description="Median of classified_at - created_at, seconds, over the items received live: back-dated "
                    f"imports ({backdated_definition()}) are left out")
    backdated_excluded: int = Field(
        description="Back-dated imports of the window left out of median_time_to_classify_s")


class LoopValues(BaseModel):
    """Closing the loop over the window: links made, loops closed, and how long each step took from the first
    report of what was linked."""

    links: int = Field(description="Links made in the window")
    open: int = Field(description="Links whose loop had not closed at the window's end (cancelled/failed left out)")
    closed: int = Field(description="Loops closed in the window (issue done or released)")
    issues_created: int = Field(description="Issues aggregation filed in the window")
    median_time_to_issue_s: float | None = Field(description="First report → issue filed or linked, seconds")
    median_time_to_close_s: float | None = Field(description="First report → loop closed, seconds")
    median_time_to_told_s: float | None = Field(
        description="First report → `loop_closed` insight raised (when telling the customers starts), seconds")
    closed_item_share: float | None = Field(
        description="Of the items created in the window in linked themes, the share a closed loop answers")
    customers_told: int = Field(description="Customers named in the loops closed in the window")
    regressions: int = Field(description="Closed loops flagged as possible regressions in the window")


class KpiWindow(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    model_config = {"populate_by_name": True, "serialize_by_alias": True}


class Kpis(BaseModel):
    window: KpiWindow
    previous_window: KpiWindow
    current: KpiValues
    previous: KpiValues
    change: dict[str, float | None] = Field(
        description="volume and median_time_to_classify_s: relative change; the others: difference in points")
    loop: LoopValues

    model_config = {"json_schema_extra": {"examples": [{
        "window": {"from": "2025-03-01T00:00:00Z", "to": "2025-03-08T00:00:00Z"},
        "previous_window": {"from": "2025-02-22T00:00:00Z", "to": "2025-03-01T00:00:00Z"},
        "current": {"volume": 812, "negative_share": 0.31, "sentiment_avg": -0.05, "nps": 21.5, "nps_responses": 200,
                    "csat": 78.0, "csat_responses": 150, "median_time_to_classify_s": 1.8,
                    "backdated_excluded": 0},
        "previous": {"volume": 640, "negative_share": 0.22, "sentiment_avg": 0.08, "nps": 34.0, "nps_responses": 180,
                     "csat": 84.2, "csat_responses": 140, "median_time_to_classify_s": 1.7,
                     "backdated_excluded": 1200},
        "change": {"volume": 0.2688, "negative_share": 0.09, "sentiment_avg": -0.13, "nps": -12.5, "csat": -6.2,
                   "median_time_to_classify_s": 0.0588},
        "loop": {"links": 3, "open": 2, "closed": 1, "issues_created": 2, "median_time_to_issue_s": 86400.0,
                 "median_time_to_close_s": 604800.0, "median_time_to_told_s": 604805.0, "closed_item_share": 0.4,
                 "customers_told": 9, "regressions": 0}}]}}


@router.get("/kpis", response_model=Kpis, summary="KPIs over a window, with the change from the window before",
            description="The window ends at `to` (a whole hour; default the end of the current hour) and lasts "
            "`window`; the previous window has the same length just before it.",
            responses={422: {"description": "A parameter is invalid; `errors` names it"}})
async def get_kpis(_key: ReadKey, queries: AnalyticsDep, request: Request,
                   params: Annotated[KpiQuery, Query()]) -> Kpis:
    window = window_ending(params.to or ceil_hour(datetime.now(UTC)), parse_length(params.window))
    report = await kpi_report(queries, window)
    loop = await loop_report(LinkQueries(request.app.state.runtime.read_engine), window.start, window.end)
    prev = window.previous()
    return Kpis.model_validate({
        "window": {"from": window.start, "to": window.end}, "previous_window": {"from": prev.start, "to": prev.end},
        "current": asdict(report.current), "previous": asdict(report.previous), "change": report.change(),
        "loop": loop_values(loop)})


def loop_values(loop: LoopKpis) -> LoopValues:
    return LoopValues.model_validate({k: getattr(loop, k) for k in LoopValues.model_fields})
