"""``create_app()``: the aggregation app; its lifespan owns the store, the consumer, the relay, the detectors and the
retries of tracker issues being created."""

from __future__ import annotations

from fastapi import FastAPI

from aggregation import __version__
from aggregation.api import dashboard, feedback, insights, kpis, links, releases, themes
from aggregation.config import AggregationSettings
from aggregation.consumer import subscriptions
from aggregation.service.links import Trackers
from aggregation.store import MIGRATIONS
from aggregation.store.models import runtime_tables
from aggregation.worker import detection_worker, link_worker
from feedbackloop.service_app import ServiceParts, service_app
from feedbackloop.trackers import TrackerSettings

__all__ = ["MIGRATIONS", "create_app"]


def create_app(settings: AggregationSettings | None = None, trackers: TrackerSettings | None = None) -> FastAPI:
    """The app; ``trackers`` (default: from ``TRACKER_*``) says which trackers it may file issues in."""
    settings = settings or AggregationSettings()
    calls = Trackers(trackers or TrackerSettings())
    app = service_app(ServiceParts(
        name="aggregation",
        description="Keeps the latest revision of every classified item, serves the dashboard's read API and "
        "publishes `insights.v1`.",
        version=__version__,
        routers=[feedback.router, themes.router, kpis.router, insights.router, releases.router, links.router,
                 dashboard.router],
        tables=runtime_tables,
        migrations=MIGRATIONS,
        subscriptions=subscriptions(),
        workers=[detection_worker(settings), link_worker(settings, calls)],
    ), settings)
    app.state.trackers = calls
    return app
