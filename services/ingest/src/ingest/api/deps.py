"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from feedbackloop.db import UnitOfWorkFactory
from ingest.api.ratelimit import RateLimits
from ingest.config import IngestSettings
from ingest.domain.feedback import RedactionPolicy
from ingest.domain.sources import SourceStats
from ingest.service import GroupCommitter


async def _uow(request: Request) -> UnitOfWorkFactory:
    return request.app.state.runtime.uow  # type: ignore[no-any-return]


async def _committer(request: Request) -> GroupCommitter:
    return request.app.state.committer  # type: ignore[no-any-return]


async def _settings(request: Request) -> IngestSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _stats(request: Request) -> SourceStats:
    return request.app.state.source_stats  # type: ignore[no-any-return]


async def _limits(request: Request) -> RateLimits:
    return request.app.state.rate_limits  # type: ignore[no-any-return]


async def _policy(request: Request) -> RedactionPolicy:
    return request.app.state.redaction  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Intake:
    """What a handler taking in feedback uses, as ONE dependency: FastAPI resolves each dependency of a request
    on its own (a few microseconds each), and the feedback and webhook handlers run for every item."""

    committer: GroupCommitter
    settings: IngestSettings
    limits: RateLimits
    policy: RedactionPolicy
    stats: SourceStats


async def _intake(request: Request) -> Intake:
    state = request.app.state
    return Intake(state.committer, state.settings, state.rate_limits, state.redaction, state.source_stats)


UowDep = Annotated[UnitOfWorkFactory, Depends(_uow)]
CommitterDep = Annotated[GroupCommitter, Depends(_committer)]
SettingsDep = Annotated[IngestSettings, Depends(_settings)]
StatsDep = Annotated[SourceStats, Depends(_stats)]
LimitsDep = Annotated[RateLimits, Depends(_limits)]
PolicyDep = Annotated[RedactionPolicy, Depends(_policy)]
IntakeDep = Annotated[Intake, Depends(_intake)]
