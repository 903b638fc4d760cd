"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from classification.model.classifier import Classifier
from classification.service import LiveState
from feedbackloop.db import UnitOfWorkFactory, session_factory


def _live(request: Request) -> LiveState:
    return request.app.state.live  # type: ignore[no-any-return]


def _classifier(request: Request) -> Classifier:
    return _live(request).classifier


def _units(request: Request) -> UnitOfWorkFactory:
    return request.app.state.runtime.uow  # type: ignore[no-any-return]


def _read_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    # Read-only sessions (on SQLite they never take the write lock); built once per app.
    sessions = getattr(request.app.state, "read_sessions", None)
    if sessions is None:
        sessions = request.app.state.read_sessions = session_factory(request.app.state.runtime.read_engine)
    return sessions


LiveDep = Annotated[LiveState, Depends(_live)]
ClassifierDep = Annotated[Classifier, Depends(_classifier)]
UnitsDep = Annotated[UnitOfWorkFactory, Depends(_units)]
ReadSessionsDep = Annotated[async_sessionmaker[AsyncSession], Depends(_read_sessions)]
