"""Managing teams: the names rules route to, and their quiet hours (checked by the domain)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop.db import UnitOfWork, UnitOfWorkFactory
from feedbackloop.http import Conflict, NotFound, ProblemError
from feedbackloop.logs import get_logger
from notification.domain.noise import parse_quiet_hours
from notification.domain.rules import RuleInvalid
from notification.store.models import Team
from notification.store.repository import TeamRepository

__all__ = ["TeamDraft", "create_team", "delete_team", "get_team", "list_teams", "update_team", "upsert_team_by_name"]

log = get_logger(__name__)


@dataclass(frozen=True)
class TeamDraft:
    """A team as a client sent it; ``quiet_hours`` is checked by the domain."""

    name: str
    quiet_hours: dict[str, Any] | None = None


def _team_checked(draft: TeamDraft) -> dict[str, Any] | None:
    try:
        hours = parse_quiet_hours(draft.quiet_hours)
    except RuleInvalid as exc:
        raise ProblemError(f"Invalid team: {exc}.", status=422, title="Invalid team", errors=exc.errors) from exc
    return hours.to_json() if hours else None


async def create_team(uow_factory: UnitOfWorkFactory, draft: TeamDraft) -> Team:
    """Store a team; 409 when the name is taken, 422 naming a bad quiet-hours key."""
    hours = _team_checked(draft)
    now = datetime.now(UTC)
    team = Team(id=str(uuid.uuid4()), name=draft.name, quiet_hours=hours, created_at=now, updated_at=now)
    async with uow_factory() as uow:
        repo = TeamRepository(uow.session)
        if await repo.by_name(draft.name) is not None:
            raise Conflict(f"A team called {draft.name!r} exists; PUT /v1/teams/{{id}} changes it.")
        repo.add(team)
        await uow.commit()
    log.info("team created", team_id=team.id, team=team.name)
    return team


async def update_team(uow_factory: UnitOfWorkFactory, team_id: str, draft: TeamDraft) -> Team:
    """Replace a team's name and quiet hours; 404, 409 (name taken) or 422."""
    hours = _team_checked(draft)
    async with uow_factory() as uow:
        repo = TeamRepository(uow.session)
        team = await repo.get(team_id)
        if team is None:
            raise NotFound(f"No team {team_id}.")
        other = await repo.by_name(draft.name)
        if other is not None and other.id != team_id:
            raise Conflict(f"A team called {draft.name!r} exists.")
        team.name, team.quiet_hours, team.updated_at = draft.name, hours, datetime.now(UTC)
        await uow.commit()
    return team


async def delete_team(uow_factory: UnitOfWorkFactory, team_id: str) -> None:
    """Delete a team (its rules stay, and are sent without quiet hours)."""
    async with uow_factory() as uow:
        repo = TeamRepository(uow.session)
        team = await repo.get(team_id)
        if team is None:
            raise NotFound(f"No team {team_id}.")
        await repo.delete(team)
        await uow.commit()


async def get_team(sessions: async_sessionmaker[AsyncSession], team_id: str) -> Team:
    async with sessions() as session, session.begin():
        team = await TeamRepository(session).get(team_id)
    if team is None:
        raise NotFound(f"No team {team_id}.")
    return team


async def list_teams(sessions: async_sessionmaker[AsyncSession], limit: int,
                     after: tuple[datetime, str] | None) -> list[Team]:
    async with sessions() as session, session.begin():
        return await TeamRepository(session).page(limit, after)


async def upsert_team_by_name(uow: UnitOfWork, draft: TeamDraft) -> str:
    """Create or replace the team called ``draft.name`` in the caller's transaction; ``created`` or ``updated``.

    Raises :class:`RuleInvalid` (not a problem body): the caller (the rules file loader) names file and team.
    """
    hours = parse_quiet_hours(draft.quiet_hours)
    repo = TeamRepository(uow.session)
    team = await repo.by_name(draft.name)
    now = datetime.now(UTC)
    if team is None:
        repo.add(Team(id=str(uuid.uuid4()), name=draft.name, quiet_hours=hours.to_json() if hours else None,
                      created_at=now, updated_at=now))
        return "created"
    team.quiet_hours, team.updated_at = (hours.to_json() if hours else None), now
    return "updated"
