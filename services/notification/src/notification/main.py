"""``create_app()``: the notification app; its lifespan owns the store, the consumer and the delivery worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from feedbackloop.contracts.webhooks import add_webhooks
from feedbackloop.db import session_factory
from feedbackloop.runtime import ServiceRuntime
from feedbackloop.service_app import RuntimeParts, ServiceParts, service_app
from notification import __version__
from notification.api import deliveries, rules, teams
from notification.config import NotificationSettings
from notification.consumer import subscriptions
from notification.service.rules_file import load_rules_file
from notification.store import MIGRATIONS
from notification.store.models import runtime_tables
from notification.worker import DeliveryWorker

__all__ = ["MIGRATIONS", "create_app"]


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()

    async def prepare(app: FastAPI) -> RuntimeParts:
        queued = asyncio.Event()  # set by the consumer when it queued deliveries, so the worker looks at once

        def delivery_worker(runtime: ServiceRuntime) -> DeliveryWorker:
            return DeliveryWorker(settings, runtime.uow, session_factory(runtime.read_engine), queued)

        return RuntimeParts(subscriptions=subscriptions(settings, queued.set), workers=[delivery_worker])

    @asynccontextmanager
    async def started(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        if settings.rules_file is not None:  # raises RulesFileError naming file and rule: the start fails
            await load_rules_file(settings.rules_file, runtime.uow, settings.target_policy, settings.integrations)
        yield

    return service_app(ServiceParts(
        name="notification",
        description="Teams and rules over `feedback.classified.v1` and `insights.v1`; each match goes to Slack, "
        "email or a webhook signed per Standard Webhooks, throttled, held in quiet hours, retried with backoff, "
        "and recorded attempt by attempt. A `loop_closed` insight is told to each customer's owner and replied "
        "on the customer's Zendesk or Intercom conversation, once per customer; a `tracker` channel files a "
        "GitHub, Jira or Linear issue per insight.",
        version=__version__,
        routers=[rules.router, teams.router, deliveries.router],
        tables=runtime_tables,
        migrations=MIGRATIONS,
        prepare=prepare,
        started=started,
        max_body_bytes=settings.max_body_bytes,
        openapi_extensions=[add_webhooks],  # the payloads it sends, as OpenAPI 3.1 `webhooks`
    ), settings)
