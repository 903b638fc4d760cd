"""aggregation's place in the ``feedbackloop`` CLI, found through the ``feedbackloop.services`` entry point."""

from __future__ import annotations

from aggregation.config import AggregationSettings
from aggregation.store import MIGRATIONS
from feedbackloop.plugins import ServicePlugin

__all__ = ["plugin"]


plugin = ServicePlugin(
    name="aggregation",
    settings=AggregationSettings,
    app_factory="aggregation.main:create_app",
    migrations=MIGRATIONS,
)
