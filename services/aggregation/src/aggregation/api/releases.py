"""``POST /v1/releases`` (a marker, published to ``releases.v1`` through the outbox) and ``GET /v1/releases``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from aggregation.api.deps import AnalyticsDep, UowDep
from aggregation.service import publish_release
from feedbackloop.contracts import Release
from feedbackloop.http import ReadKey, WriteKey

router = APIRouter(prefix="/v1", tags=["releases"])


class ReleaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"version": "4.2.1", "service": "web", "released_at": "2025-03-01T13:51:00Z",
         "link": "https://github.com/acme/web/releases/tag/4.2.1"}]})

    release_id: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="Your id of the marker; the same id again replaces it")
    version: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="release", pattern="^(release|incident)$")
    service: str | None = Field(default=None, max_length=200)
    released_at: datetime | None = Field(default=None, description="Default: now")
    link: str | None = Field(default=None, max_length=2048)
    description: str | None = Field(default=None, max_length=2000)
    issues: list[Annotated[str, Field(min_length=1, max_length=2048)]] = Field(
        default_factory=list, max_length=500, description="Tracker issues this release ships (URLs or keys): the "
        "loops of the themes linked to them close with it")


class ReleaseAccepted(BaseModel):
    release: Release
    event_id: str


class ReleasePage(BaseModel):
    items: list[Release]
    next_cursor: str | None = None


@router.post("/releases", status_code=202, response_model=ReleaseAccepted, summary="Mark a release or incident",
             description="Publishes the marker to `releases.v1` (through the outbox, like any CI pipeline could); "
             "aggregation stores it when it consumes the event, within a second or two. Spike and sentiment-drop "
             "insights name a release that preceded them within `AGGREGATION_RELEASE_WINDOW_HOURS`.",
             responses={422: {"description": "A field is invalid; `errors` names it"}})
async def post_release(body: ReleaseIn, _key: WriteKey, uow: UowDep) -> ReleaseAccepted:
    released_at = body.released_at or datetime.now(UTC)
    release = Release(release_id=body.release_id or str(uuid.uuid4()), version=body.version,
                      kind="incident" if body.kind == "incident" else "release", service=body.service,
                      released_at=released_at if released_at.tzinfo else released_at.replace(tzinfo=UTC),
                      link=body.link, description=body.description, issues=body.issues)
    async with uow() as unit:
        event_id = publish_release(unit, release)
        await unit.commit()
    return ReleaseAccepted(release=release, event_id=event_id)


@router.get("/releases", response_model=ReleasePage, summary="Release and incident markers, newest first")
async def list_releases(_key: ReadKey, queries: AnalyticsDep) -> ReleasePage:
    return ReleasePage(items=[Release.model_validate(r) for r in await queries.releases(None, None)])
