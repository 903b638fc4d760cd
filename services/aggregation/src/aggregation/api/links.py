"""Tracker links: ``POST /v1/themes/{id}/links``, ``POST /v1/insights/{id}/links``, ``POST /v1/links`` (a set of
items), ``GET /v1/links``, ``GET|DELETE /v1/links/{id}``. Each links an existing issue (URL or key) or files a new
one in GitHub, Jira or Linear (``service/links.py``); the link then follows the issue (``tracker.v1``) and its loop
closes when the issue is done or a release names it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from aggregation.api.deps import AnalyticsDep, SettingsDep, UowDep
from aggregation.domain.filters import LinkQuery
from aggregation.domain.loops import link_times
from aggregation.service.links import CreateSpec, LinkError, Subject, Trackers, create_link, link_existing, load_subject
from aggregation.store.links import LinkFilter, LinkQueries, LinkRepository, times_of
from feedbackloop.http import NotFound, ProblemError, ReadKey, WriteKey, cursor_key, keyset_page

router = APIRouter(prefix="/v1", tags=["links"])

_LABEL = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^,\s][^,]*$")]


class CreateIn(BaseModel):
    """The issue to file: ``repository`` for GitHub, ``project`` (and ``issue_type``) for Jira, ``team`` for Linear."""

    model_config = ConfigDict(extra="forbid")

    tracker: Literal["github", "jira", "linear"]
    repository: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}/[A-Za-z0-9._-]{1,100}$",
                                   description="GitHub `owner/repo`")
    project: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,49}$", description="Jira project key")
    team: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,49}$", description="Linear team key")
    issue_type: str = Field(default="Bug", min_length=1, max_length=100, description="Jira issue type")


class LinkIn(BaseModel):
    """Either ``issue`` (link an existing issue by URL or key) or ``create`` (file one)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"issue": "https://github.com/acme/web/issues/42"},
        {"create": {"tracker": "github", "repository": "acme/web"}, "labels": ["feedback"]}]})

    issue: str | None = Field(default=None, min_length=1, max_length=2048,
                              description="An issue URL or key: `github:acme/web#42`, `jira:AUTH-7`, `linear:ENG-12`")
    create: CreateIn | None = None
    labels: list[_LABEL] = Field(default_factory=list, max_length=20, description="Labels of a filed issue")


class ItemsLinkIn(LinkIn):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"feedback_ids": ["0b6f2c1e-8a4d-5f3b-9c7e-1d2a3b4c5d6e"], "issue": "jira:AUTH-7"}]})

    feedback_ids: list[uuid.UUID] = Field(min_length=1, max_length=500, description="The items the issue answers")


class LinkRelease(BaseModel):
    release_id: str
    version: str | None


class LinkCreate(BaseModel):
    tracker: str
    target: str
    issue_type: str | None = None
    labels: list[str] = Field(default_factory=list)


class LinkOut(BaseModel):
    link_id: str
    subject: Literal["theme", "insight", "items"]
    theme_id: str | None
    insight_id: str | None
    feedback_ids: list[str] | None
    tracker: str
    issue_key: str | None = Field(description="Null while the issue is being created")
    url: str | None
    title: str | None
    status: Literal["creating", "open", "in_progress", "done", "cancelled", "failed"]
    created_issue: bool = Field(description="Filed by aggregation (true) or an existing issue linked (false)")
    create: LinkCreate | None = Field(description="What is being filed, while `status` is `creating` or `failed`")
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    linked_at: datetime
    issue_created_at: datetime | None
    first_report_at: datetime | None = Field(description="The subject's earliest item when it was linked")
    closed_at: datetime | None = Field(description="When the loop closed (issue done or released); kept if reopened")
    loop_closed_at: datetime | None = Field(description="When the `loop_closed` insight was raised")
    release: LinkRelease | None
    customers_told: int
    regression_at: datetime | None
    regressed_items: int
    time_to_issue_s: float | None
    time_to_close_s: float | None
    time_to_told_s: float | None
    created_by: str | None


class LinkPage(BaseModel):
    items: list[LinkOut]
    next_cursor: str | None


def link_out(link: dict[str, Any]) -> LinkOut:
    request: dict[str, Any] = link.get("create_request") or {}
    pending = link["status"] in ("creating", "failed") and bool(request)
    return LinkOut.model_validate({
        **{k: link.get(k) for k in LinkOut.model_fields if k in link},
        "create": {k: request.get(k) for k in ("tracker", "target", "issue_type", "labels")} if pending else None,
        "release": {"release_id": link["release_id"], "version": link["release_version"]}
        if link.get("release_id") else None,
        "created_issue": bool(link.get("created_issue")), "attempts": link.get("attempts") or 0,
        "customers_told": link.get("customers_told") or 0, "regressed_items": link.get("regressed_items") or 0,
        **link_times(times_of(link))})


def _problem(error: LinkError) -> ProblemError:
    titles = {404: "Not found", 409: "Conflict", 422: "Unprocessable content", 502: "Bad gateway"}
    return ProblemError(error.message, status=error.status, title=titles.get(error.status, "Bad request"),
                        errors=[{"field": error.field, "message": error.message}])


def _spec(body: LinkIn) -> CreateSpec | None:
    """The creation asked for; a problem naming the field when the body asks for neither or both, or lacks the
    tracker's target."""
    if (body.issue is None) == (body.create is None):
        raise ProblemError("Give either `issue` (a URL or key to link) or `create` (an issue to file).", status=422,
                           title="Unprocessable content",
                           errors=[{"field": "issue", "message": "give exactly one of `issue` and `create`"}])
    create = body.create
    if create is None:
        return None
    field, target = {"github": ("repository", create.repository), "jira": ("project", create.project),
                     "linear": ("team", create.team)}[create.tracker]
    if target is None:
        raise ProblemError(f"A {create.tracker} issue needs `create.{field}`.", status=422,
                           title="Unprocessable content",
                           errors=[{"field": f"create.{field}", "message": f"required for {create.tracker}"}])
    return CreateSpec(tracker=create.tracker, target=target, target_field=f"create.{field}",
                      issue_type=create.issue_type, labels=tuple(body.labels))


_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "Linked: the issue exists (linked, or filed now)"},
    202: {"description": "Filing the issue failed for now (the tracker is away or rate-limited): `status` is "
                         "`creating`, a worker retries with backoff, never filing twice; follow `Location`",
          "model": LinkOut},
    404: {"description": "No such theme or insight"},
    409: {"description": "The subject is linked to that issue already"},
    422: {"description": "A field is invalid (`errors` names it): not an issue URL or key, no such issue, no such "
                         "repository/project/team, a tracker not configured (the detail names its TRACKER_* "
                         "variables)"},
    502: {"description": "The tracker refused aggregation's credentials, or failed for good"},
}


async def _link(request: Request, response: Response, uow: UowDep, analytics: AnalyticsDep, settings: SettingsDep,
                key_name: str | None, body: LinkIn, subject: Subject) -> LinkOut:
    trackers: Trackers = request.app.state.trackers
    spec = _spec(body)
    try:
        if spec is None:
            assert body.issue is not None
            link = await link_existing(uow, trackers, subject, body.issue, key_name)
            made = True
        else:
            link, made = await create_link(uow, trackers, analytics, subject, spec, key_name, settings.public_url)
    except LinkError as error:
        raise _problem(error) from None
    response.status_code = 201 if made else 202
    response.headers["Location"] = f"/v1/links/{link['link_id']}"
    return link_out(link)


async def _subject(uow: UowDep, kind: Literal["theme", "insight", "items"], ident: Any) -> Subject:
    try:
        return await load_subject(uow, kind, ident)
    except LinkError as error:
        raise _problem(error) from None


@router.post("/themes/{theme_id}/links", status_code=201, response_model=LinkOut, responses=_RESPONSES,
             summary="Link a theme to a tracker issue, or file one",
             description="`issue`: link an existing GitHub, Jira or Linear issue by URL or key (title and status "
             "from the tracker when it is configured). `create`: file an issue with the theme's counts, trend, "
             "affected customers and MRR, up to five quotes and a link back to the dashboard. When the issue is "
             "done, or a release names it, the theme's loop closes: a `loop_closed` insight names every customer to "
             "tell.")
async def link_theme(theme_id: Annotated[str, Path(max_length=256)], body: LinkIn, key: WriteKey,
                     request: Request, response: Response, uow: UowDep, analytics: AnalyticsDep,
                     settings: SettingsDep) -> LinkOut:
    subject = await _subject(uow, "theme", theme_id)
    return await _link(request, response, uow, analytics, settings, key.name, body, subject)


@router.post("/insights/{insight_id}/links", status_code=201, response_model=LinkOut, responses=_RESPONSES,
             summary="Link an insight to a tracker issue, or file one",
             description="As for a theme; the loop answers the insight's evidence items (and its theme's link shows "
             "on the theme).")
async def link_insight(insight_id: uuid.UUID, body: LinkIn, key: WriteKey, request: Request, response: Response,
                       uow: UowDep, analytics: AnalyticsDep, settings: SettingsDep) -> LinkOut:
    subject = await _subject(uow, "insight", str(insight_id))
    return await _link(request, response, uow, analytics, settings, key.name, body, subject)


@router.post("/links", status_code=201, response_model=LinkOut, responses=_RESPONSES,
             summary="Link a set of items to a tracker issue, or file one",
             description="As for a theme, for the `feedback_ids` given (each must be stored: 422 naming "
             "`feedback_ids` otherwise).")
async def link_items(body: ItemsLinkIn, key: WriteKey, request: Request, response: Response, uow: UowDep,
                     analytics: AnalyticsDep, settings: SettingsDep) -> LinkOut:
    subject = await _subject(uow, "items", [str(i) for i in body.feedback_ids])
    return await _link(request, response, uow, analytics, settings, key.name, body, subject)


@router.get("/links", response_model=LinkPage, summary="Tracker links, newest first",
            responses={400: {"description": "Malformed cursor"},
                       422: {"description": "A filter is unknown or invalid; `errors` names it"}})
async def list_links(_key: ReadKey, request: Request, filters: Annotated[LinkQuery, Query()]) -> LinkPage:
    queries = LinkQueries(request.app.state.runtime.read_engine)
    rows = await queries.page(LinkFilter(filters.theme, filters.status, filters.tracker),
                              cursor_key(filters.cursor, datetime, str), filters.limit + 1)
    page, next_cursor = keyset_page(rows, filters.limit, key=lambda r: (r["linked_at"], r["link_id"]))
    return LinkPage(items=[link_out(r) for r in page], next_cursor=next_cursor)


@router.get("/links/{link_id}", response_model=LinkOut, summary="A tracker link and its loop",
            responses={404: {"description": "No such link"}})
async def get_link(link_id: uuid.UUID, _key: ReadKey, request: Request) -> LinkOut:
    link = await LinkQueries(request.app.state.runtime.read_engine).get(str(link_id))
    if link is None:
        raise NotFound(f"No link {link_id}.")
    return link_out(link)


@router.delete("/links/{link_id}", status_code=204, summary="Remove a tracker link",
               description="The issue stays in its tracker; insights already raised stay.",
               responses={404: {"description": "No such link"}})
async def delete_link(link_id: uuid.UUID, _key: WriteKey, uow: UowDep) -> Response:
    async with uow() as unit:
        gone = await LinkRepository(unit.session).delete(str(link_id))
        await unit.commit()
    if not gone:
        raise NotFound(f"No link {link_id}.")
    return Response(status_code=204)
