"""aggregation's place in the ``feedbackloop`` CLI, found through the ``feedbackloop.services`` entry point."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from aggregation.config import AggregationSettings
from aggregation.store import MIGRATIONS
from feedbackloop.plugins import ServicePlugin

__all__ = ["plugin"]


def _create_app(settings: Any) -> FastAPI:
    from aggregation.main import create_app  # imported when served, not each time the CLI starts

    return create_app(settings)


plugin = ServicePlugin(
    name="aggregation",
    settings=AggregationSettings,
    create_app=_create_app,
    migrations=MIGRATIONS,
)
