"""Dependencies the routers share: the running service's parts, typed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from aggregation.config import AggregationSettings
from aggregation.store.analytics import AnalyticsQueries
from aggregation.store.repository import ReadQueries
from aggregation.store.sessions import DashboardSessions
from feedbackloop.db import UnitOfWorkFactory


def _queries(request: Request) -> ReadQueries:
    return ReadQueries(request.app.state.runtime.read_engine)


def _analytics(request: Request) -> AnalyticsQueries:
    return AnalyticsQueries(request.app.state.runtime.read_engine)


def _settings(request: Request) -> AggregationSettings:
    settings: AggregationSettings = request.app.state.settings
    return settings


def _uow(request: Request) -> UnitOfWorkFactory:
    factory: UnitOfWorkFactory = request.app.state.runtime.uow
    return factory


def _sessions(request: Request) -> DashboardSessions:
    runtime = request.app.state.runtime
    return DashboardSessions(runtime.uow, runtime.read_engine)


QueriesDep = Annotated[ReadQueries, Depends(_queries)]
AnalyticsDep = Annotated[AnalyticsQueries, Depends(_analytics)]
SettingsDep = Annotated[AggregationSettings, Depends(_settings)]
UowDep = Annotated[UnitOfWorkFactory, Depends(_uow)]
SessionsDep = Annotated[DashboardSessions, Depends(_sessions)]
