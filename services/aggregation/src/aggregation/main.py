"""``create_app()``: the aggregation HTTP app and its lifespan, which owns the store, consumer and relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from aggregation import __version__
from aggregation.api import dashboard, feedback, insights, kpis, releases, themes
from aggregation.config import AggregationSettings
from aggregation.consumer import SUBSCRIPTIONS
from aggregation.detection import detection_worker
from aggregation.store.models import runtime_tables
from feedbackloop.http import build_app
from feedbackloop.runtime import start_runtime

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


def create_app(settings: AggregationSettings | None = None) -> FastAPI:
    settings = settings or AggregationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with start_runtime(name="aggregation", settings=settings, tables=runtime_tables,
                                 migrations=MIGRATIONS, subscriptions=SUBSCRIPTIONS,
                                 workers=[detection_worker(settings)]) as runtime:
            app.state.runtime = runtime
            yield

    app = build_app(
        service="aggregation",
        title="Feedback Loop — aggregation",
        description="Keeps the latest revision of every classified item, serves the dashboard's read API and "
        "publishes `insights.v1`.",
        version=__version__,
        settings=settings,
        lifespan=lifespan,
        routers=[feedback.router, themes.router, kpis.router, insights.router, releases.router, dashboard.router],
    )
    return app
