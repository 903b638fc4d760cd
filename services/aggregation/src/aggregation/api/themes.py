"""``GET /v1/themes``: how many items each theme has, and how many of them are negative."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from aggregation.api.cursors import count_key, next_cursor
from aggregation.api.deps import QueriesDep
from aggregation.domain.filters import ThemeFilter
from feedbackloop.http import ReadKey

router = APIRouter(prefix="/v1", tags=["themes"])


class ThemeOut(BaseModel):
    id: str
    name: str
    count: int
    negative_count: int
    negative_share: float
    last_seen: datetime


class ThemePage(BaseModel):
    items: list[ThemeOut]
    next_cursor: str | None


@router.get("/themes", response_model=ThemePage, summary="Themes by number of items",
            description="Counts the latest revision of each item, so a corrected item counts under its new "
            "themes only. With `from`/`to`, only items created in that window count.",
            responses={400: {"description": "Malformed cursor"},
                       422: {"description": "A parameter is invalid; `errors` names it"}})
async def list_themes(_key: ReadKey, queries: QueriesDep, filters: Annotated[ThemeFilter, Query()]) -> ThemePage:
    page = await queries.themes(filters, count_key(filters.cursor))
    return ThemePage(items=[ThemeOut(id=s.id, name=s.name, count=s.count, negative_count=s.negative_count,
                                     negative_share=s.negative_share, last_seen=s.last_seen) for s in page.items],
                     next_cursor=next_cursor(page.next_key))
