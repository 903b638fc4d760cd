"""``create_app()``: the classification app; its lifespan builds the classifier, then starts store and consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from classification import __version__
from classification.api import classify, corrections, review, taxonomy
from classification.config import ClassificationSettings
from classification.consumer import subscriptions
from classification.model.classifier import build_classifier
from classification.model.embedding import Encoder
from classification.service import LiveState, restore
from classification.store import MIGRATIONS
from classification.store.models import runtime_tables
from feedbackloop.runtime import ServiceRuntime
from feedbackloop.service_app import RuntimeParts, ServiceParts, service_app

__all__ = ["MIGRATIONS", "create_app"]


def create_app(settings: ClassificationSettings | None = None, *, encoder: Encoder | None = None) -> FastAPI:
    """The app; ``encoder`` shares an already loaded embedding model (tests), else the lifespan loads one."""
    settings = settings or ClassificationSettings()

    async def prepare(app: FastAPI) -> RuntimeParts:
        # The taxonomy is read once, here: an invalid file stops the start with the problems it has.
        live = app.state.live = LiveState(await asyncio.to_thread(build_classifier, settings, encoder))
        return RuntimeParts(subscriptions=subscriptions(live), workers=[lambda _runtime: live.learner])

    @asynccontextmanager
    async def started(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        # What the store remembers (taxonomy put through the API, corrections, clusters) before any event.
        async with runtime.uow() as uow:
            await restore(uow, app.state.live)
        try:
            yield
        finally:
            await app.state.live.close()

    return service_app(ServiceParts(
        name="classification",
        description="Labels each `feedback.raw.v1` item with sentiment, kind, themes, product area, urgency and "
        "language, and publishes `feedback.classified.v1`. `POST /v1/classify` previews labels without storing.",
        version=__version__,
        routers=[classify.router, taxonomy.router, corrections.router, review.router],
        tables=runtime_tables,
        migrations=MIGRATIONS,
        prepare=prepare,
        started=started,
        max_body_bytes=settings.max_body_bytes,
    ), settings)
