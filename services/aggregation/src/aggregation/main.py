"""``create_app()``: the aggregation app; its lifespan owns the store, the consumer, the relay and the detectors."""

from __future__ import annotations

from fastapi import FastAPI

from aggregation import __version__
from aggregation.api import dashboard, feedback, insights, kpis, releases, themes
from aggregation.config import AggregationSettings
from aggregation.consumer import subscriptions
from aggregation.store import MIGRATIONS
from aggregation.store.models import runtime_tables
from aggregation.worker import detection_worker
from feedbackloop.service_app import ServiceParts, service_app

__all__ = ["MIGRATIONS", "create_app"]


def create_app(settings: AggregationSettings | None = None) -> FastAPI:
    settings = settings or AggregationSettings()
    return service_app(ServiceParts(
        name="aggregation",
        description="Keeps the latest revision of every classified item, serves the dashboard's read API and "
        "publishes `insights.v1`.",
        version=__version__,
        routers=[feedback.router, themes.router, kpis.router, insights.router, releases.router, dashboard.router],
        tables=runtime_tables,
        migrations=MIGRATIONS,
        subscriptions=subscriptions(),
        workers=[detection_worker(settings)],
    ), settings)
