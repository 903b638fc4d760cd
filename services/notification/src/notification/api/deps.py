"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from feedbackloop.db import UnitOfWorkFactory
from notification.config import NotificationSettings


def _uow(request: Request) -> UnitOfWorkFactory:
    return request.app.state.runtime.uow  # type: ignore[no-any-return]


def _read_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.read_sessions  # type: ignore[no-any-return]


def _settings(request: Request) -> NotificationSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


UowDep = Annotated[UnitOfWorkFactory, Depends(_uow)]
ReadDep = Annotated[async_sessionmaker[AsyncSession], Depends(_read_sessions)]
SettingsDep = Annotated[NotificationSettings, Depends(_settings)]
