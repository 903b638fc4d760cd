"""``/v1/teams``: the teams rules route to, and their quiet hours."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from feedbackloop.http import AdminKey, ReadKey, cursor_key, keyset_page
from notification.api.deps import ReadDep, UowDep
from notification.api.schemas import TeamIn, TeamOut, TeamPage, page_key, team_out
from notification.service.teams import TeamDraft, create_team, delete_team, get_team, list_teams, update_team

router = APIRouter(prefix="/v1/teams", tags=["teams"])

_ERRORS: dict[int | str, dict[str, str]] = {409: {"description": "A team with that name exists"},
                                            422: {"description": "Invalid quiet hours: `errors` names the key"}}


@router.post("", status_code=201, response_model=TeamOut, summary="Create a team", responses=_ERRORS)
async def post_team(body: TeamIn, _key: AdminKey, uow: UowDep) -> TeamOut:
    return team_out(await create_team(uow, TeamDraft(name=body.name, quiet_hours=body.quiet_hours)))


@router.get("", response_model=TeamPage, summary="List teams, oldest first")
async def get_teams(_key: ReadKey, sessions: ReadDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    cursor: str | None = None) -> TeamPage:
    rows = await list_teams(sessions, limit + 1, cursor_key(cursor, datetime, str))
    items, next_cursor = keyset_page(rows, limit, key=page_key)
    return TeamPage(items=[team_out(t) for t in items], next_cursor=next_cursor)


@router.get("/{team_id}", response_model=TeamOut, summary="One team", responses={404: {"description": "No such team"}})
async def get_one_team(team_id: uuid.UUID, _key: ReadKey, sessions: ReadDep) -> TeamOut:
    return team_out(await get_team(sessions, str(team_id)))


@router.put("/{team_id}", response_model=TeamOut, summary="Replace a team",
            responses={**_ERRORS, 404: {"description": "No such team"}})
async def put_team(team_id: uuid.UUID, body: TeamIn, _key: AdminKey, uow: UowDep) -> TeamOut:
    return team_out(await update_team(uow, str(team_id), TeamDraft(name=body.name, quiet_hours=body.quiet_hours)))


@router.delete("/{team_id}", status_code=204, response_class=Response, summary="Delete a team",
               responses={404: {"description": "No such team"}})
async def remove_team(team_id: uuid.UUID, _key: AdminKey, uow: UowDep) -> Response:
    await delete_team(uow, str(team_id))
    return Response(status_code=204)
