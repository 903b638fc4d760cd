"""``GET /v1/themes`` (ranked by impact, with their tracker links), ``GET /v1/themes/{id}/timeseries`` and
``GET /v1/themes/{id}/loop``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from aggregation.api.deps import AnalyticsDep, SettingsDep
from aggregation.api.kpis import KpiWindow, LoopValues, loop_values
from aggregation.api.links import LinkOut, link_out
from aggregation.domain.filters import KpiQuery, ThemeFilter, TimeseriesQuery
from aggregation.domain.reports import points_between
from aggregation.domain.windows import Window, ceil_hour, parse_length, window_ending
from aggregation.service.reports import add_top_customers, loop_report, rank_themes, series
from aggregation.store.links import LinkQueries
from feedbackloop.http import ReadKey, cursor_key, keyset_page
from feedbackloop.http.problems import ProblemError

router = APIRouter(prefix="/v1", tags=["themes"])

MAX_POINTS = 2000
_DEFAULT_SPAN = {"hour": timedelta(hours=48), "day": timedelta(days=30), "week": timedelta(weeks=26)}


class TopCustomer(BaseModel):
    id: str
    count: int
    mrr: float = Field(description="The customer's mrr (average over its items in the window)")


class Trend(BaseModel):
    previous_count: int | None = Field(description="Items in the window before (null for all time)")
    change: float | None = Field(description="(count - previous) / previous; null when previous is 0 or absent")


class ThemeLink(BaseModel):
    link_id: str
    issue_key: str | None = Field(description="Null while the issue is being created")
    url: str | None
    title: str | None
    status: str = Field(description="creating | open | in_progress | done | cancelled | failed")
    loop_closed_at: datetime | None


class ThemeOut(BaseModel):
    id: str
    name: str
    count: int
    negative_count: int
    negative_share: float
    sentiment_avg: float = Field(description="Mean sentiment score, -1..1")
    urgent_count: int = Field(description="Items of urgency high or critical")
    customers: int = Field(description="Distinct customers with items in the theme")
    affected_mrr: float = Field(description="Sum of those customers' mrr")
    impact: float = Field(description="(count + affected_mrr / mrr_unit) x (1 + negative_share) x (1 + urgent share)")
    trend: Trend
    top_customers: list[TopCustomer]
    links: list[ThemeLink] = Field(default_factory=list, description="Tracker issues linked to the theme (or to its "
                                   "insights), oldest first")


class ThemePage(BaseModel):
    items: list[ThemeOut]
    next_cursor: str | None

    model_config = {"json_schema_extra": {"examples": [{"items": [{
        "id": "account.login", "name": "Login & authentication", "count": 42, "negative_count": 30,
        "negative_share": 0.7143, "sentiment_avg": -0.41, "urgent_count": 12, "customers": 9, "affected_mrr": 8400.0,
        "impact": 323.6, "trend": {"previous_count": 10, "change": 3.2},
        "top_customers": [{"id": "acme", "count": 5, "mrr": 2400.0}],
        "links": [{"link_id": "7d0c3c5e-2f4b-4a51-9a57-3c2a6e1f0b11", "issue_key": "github:acme/web#42",
                   "url": "https://github.com/acme/web/issues/42", "title": "Login fails after update",
                   "status": "done", "loop_closed_at": "2025-03-08T10:00:00Z"}]}], "next_cursor": None}]}}


class ThemeLoop(BaseModel):
    theme: str
    window: KpiWindow
    loop: LoopValues
    links: list[LinkOut]


def theme_window(filters: ThemeFilter, now: datetime) -> Window | None:
    """The window a theme query asks for; None for all time."""
    if filters.window is not None:
        end = filters.to or ceil_hour(now)
        return Window(end - parse_length(filters.window), end)
    if filters.from_ is None and filters.to is None:
        return None
    end = filters.to or ceil_hour(now)
    start = filters.from_ or datetime(1970, 1, 1, tzinfo=UTC)
    return Window(start, end)


@router.get("/themes", response_model=ThemePage, summary="Themes ranked by impact",
            description="Counts the latest revision of each item, so a corrected item counts under its new themes "
            "only. Impact = (count + affected_mrr / AGGREGATION_IMPACT_MRR_UNIT) x (1 + negative_share) x "
            "(1 + urgent share). With `window` (e.g. `7d`) or `from`/`to` (whole hours), only items created in "
            "that window count and `trend` compares with the window before; without, all time.",
            responses={400: {"description": "Malformed cursor"},
                       422: {"description": "A parameter is invalid; `errors` names it"}})
async def list_themes(_key: ReadKey, queries: AnalyticsDep, settings: SettingsDep, request: Request,
                      filters: Annotated[ThemeFilter, Query()]) -> ThemePage:
    after = cursor_key(filters.cursor, float, str)
    window = theme_window(filters, datetime.now(UTC))
    reports = await rank_themes(queries, window, settings.impact_mrr_unit)
    if after is not None:
        reports = [r for r in reports if (-r.impact, r.id) > (-after[0], after[1])]
    page, next_cursor = keyset_page(reports, filters.limit, key=lambda r: (r.impact, r.id))
    await add_top_customers(queries, window, page)
    links = await LinkQueries(request.app.state.runtime.read_engine).for_themes([r.id for r in page])
    return ThemePage(items=[ThemeOut.model_validate({**r.as_dict(), "links": links.get(r.id, [])}) for r in page],
                     next_cursor=next_cursor)


@router.get("/themes/{theme_id}/loop", response_model=ThemeLoop, summary="A theme's loop: its links and figures",
            description="The theme's tracker links and its loop figures over `window` ending at `to` (as in "
            "`GET /v1/kpis`'s `loop`).",
            responses={422: {"description": "A parameter is invalid; `errors` names it"}})
async def theme_loop(theme_id: Annotated[str, Path(max_length=256)], _key: ReadKey, request: Request,
                     params: Annotated[KpiQuery, Query()]) -> ThemeLoop:
    window = window_ending(params.to or ceil_hour(datetime.now(UTC)), parse_length(params.window))
    q = LinkQueries(request.app.state.runtime.read_engine)
    loop = await loop_report(q, window.start, window.end, theme_id)
    links = (await q.for_themes([theme_id])).get(theme_id, [])
    return ThemeLoop.model_validate({"theme": theme_id, "window": {"from": window.start, "to": window.end},
                                     "loop": loop_values(loop), "links": [link_out(x) for x in links]})


class Point(BaseModel):
    start: datetime
    count: int
    negative: int
    negative_share: float | None
    sentiment_avg: float | None


class Timeseries(BaseModel):
    theme: str
    bucket: str
    items: list[Point]


@router.get("/themes/{theme_id}/timeseries", response_model=Timeseries, summary="A theme's volume over time",
            description="One point per bucket (hour, day or week starting Monday, UTC) from the bucket holding "
            "`from` to `to`, empty buckets included; at most 2000 points.",
            responses={422: {"description": "A parameter is invalid or the range holds too many points"}})
async def theme_timeseries(theme_id: str, _key: ReadKey, queries: AnalyticsDep,
                           params: Annotated[TimeseriesQuery, Query()]) -> Timeseries:
    end = params.to or datetime.now(UTC)
    start = params.from_ or end - _DEFAULT_SPAN[params.bucket]
    if not start < end:
        raise ProblemError("`from` must be before `to`.", status=422, title="Unprocessable content",
                           errors=[{"field": "from", "message": "must be before `to`"}])
    if points_between(params.bucket, start, end) > MAX_POINTS:
        raise ProblemError(f"The range holds more than {MAX_POINTS} {params.bucket}s; use a larger bucket.",
                           status=422, title="Unprocessable content",
                           errors=[{"field": "from", "message": f"range exceeds {MAX_POINTS} buckets"}])
    points = await series(queries, "theme", theme_id, params.bucket, start, end)
    data: dict[str, Any] = {"theme": theme_id, "bucket": params.bucket,
                            "items": [p.__dict__ for p in points]}
    return Timeseries.model_validate(data)
