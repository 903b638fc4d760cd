"""``create_app()``: the notification HTTP app and its lifespan, which owns the store, consumer and delivery worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from feedbackloop.contracts.webhooks import add_webhooks
from feedbackloop.db import session_factory
from feedbackloop.http import build_app
from feedbackloop.runtime import ServiceRuntime, start_runtime
from notification import __version__
from notification.api import deliveries, rules, teams
from notification.config import NotificationSettings
from notification.consumer import subscriptions
from notification.delivery import DeliveryWorker
from notification.rules_file import load_rules_file
from notification.store.models import runtime_tables

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        queued = asyncio.Event()  # set by the consumer when it queued deliveries, so the worker looks at once

        def delivery_worker(runtime: ServiceRuntime) -> DeliveryWorker:
            return DeliveryWorker(settings, runtime.uow, session_factory(runtime.read_engine), queued)

        async with start_runtime(name="notification", settings=settings, tables=runtime_tables,
                                 migrations=MIGRATIONS, subscriptions=subscriptions(settings, queued.set),
                                 workers=[delivery_worker]) as runtime:
            app.state.runtime = runtime
            app.state.read_sessions = session_factory(runtime.read_engine)
            if settings.rules_file is not None:  # raises RulesFileError naming file and rule: the start fails
                await load_rules_file(settings.rules_file, runtime.uow, settings.target_policy)
            yield

    return build_app(
        service="notification",
        title="Feedback Loop — notification",
        description="Teams and rules over `feedback.classified.v1` and `insights.v1`; each match goes to Slack, "
        "email or a webhook signed per Standard Webhooks, throttled, held in quiet hours, retried with backoff, "
        "and recorded attempt by attempt.",
        version=__version__,
        settings=settings,
        lifespan=lifespan,
        routers=[rules.router, teams.router, deliveries.router],
        max_body_bytes=settings.max_body_bytes,
        openapi_extensions=[add_webhooks],  # the payloads it sends, as OpenAPI 3.1 `webhooks`
    )
