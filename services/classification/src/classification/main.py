"""``create_app()``: the classification HTTP app and its lifespan, which owns the classifier, store and consumer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from classification import __version__
from classification.api import classify, corrections, review, taxonomy
from classification.classifier import build_classifier
from classification.config import ClassificationSettings
from classification.consumer import subscriptions
from classification.embedding import Encoder
from classification.service import LiveState, restore
from classification.store.models import runtime_tables
from feedbackloop.http import build_app
from feedbackloop.runtime import start_runtime

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


def create_app(settings: ClassificationSettings | None = None, *, encoder: Encoder | None = None) -> FastAPI:
    """The app; ``encoder`` shares an already loaded embedding model (tests), else the lifespan loads one."""
    settings = settings or ClassificationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The taxonomy is read once, here: an invalid file stops the start with the problems it has.
        classifier = await asyncio.to_thread(build_classifier, settings, encoder)
        live = LiveState(classifier)
        app.state.live = live
        async with start_runtime(name="classification", settings=settings, tables=runtime_tables,
                                 migrations=MIGRATIONS, subscriptions=subscriptions(live)) as runtime:
            app.state.runtime = runtime
            # What the store remembers (taxonomy put through the API, corrections, clusters) before any event.
            async with runtime.uow() as uow:
                await restore(uow, live)
            try:
                yield
            finally:
                await live.close()

    return build_app(
        service="classification",
        title="Feedback Loop — classification",
        description="Labels each `feedback.raw.v1` item with sentiment, kind, themes, product area, urgency and "
        "language, and publishes `feedback.classified.v1`. `POST /v1/classify` previews labels without storing.",
        version=__version__,
        settings=settings,
        lifespan=lifespan,
        routers=[classify.router, taxonomy.router, corrections.router, review.router],
        max_body_bytes=settings.max_body_bytes,
    )
