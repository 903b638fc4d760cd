"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from feedbackloop.db import UnitOfWorkFactory
from ingest.config import IngestSettings


def _uow(request: Request) -> UnitOfWorkFactory:
    return request.app.state.runtime.uow  # type: ignore[no-any-return]


def _settings(request: Request) -> IngestSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


UowDep = Annotated[UnitOfWorkFactory, Depends(_uow)]
SettingsDep = Annotated[IngestSettings, Depends(_settings)]
