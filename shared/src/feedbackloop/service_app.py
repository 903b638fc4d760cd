"""Every service's app from one factory: its routes, its store's tables, what it consumes and its workers.

A service's ``main.py`` names its parts and, where it has them, what it sets up before and after the runtime
starts; the lifespan (store, producer, relay, consumers, workers, in that order, and the reverse at stop) and the
HTTP plumbing (problems, limits, metrics, tracing, security headers) are the same for all four:

    def create_app(settings: AggregationSettings | None = None) -> FastAPI:
        settings = settings or AggregationSettings()
        return service_app(ServiceParts(name="aggregation", description=..., version=__version__,
                                        routers=[...], tables=runtime_tables, migrations=MIGRATIONS,
                                        subscriptions=subscriptions(), workers=[DetectionWorker.factory(settings)]),
                           settings)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from feedbackloop.db import RuntimeTables, session_factory
from feedbackloop.http import build_app
from feedbackloop.runtime import ServiceRuntime, Subscription, WorkerFactory, start_runtime
from feedbackloop.settings import ServiceSettings

__all__ = ["RuntimeParts", "ServiceParts", "service_app"]

#: Runs in the lifespan before the runtime starts (load a model, check a key): returns what the runtime consumes.
Prepare = Callable[[FastAPI], Awaitable["RuntimeParts"]]
#: Runs once the runtime has started, around the app's serving time (a group committer, a cache warmed).
Started = Callable[[FastAPI, ServiceRuntime], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class RuntimeParts:
    subscriptions: Sequence[Subscription] = ()
    workers: Sequence[WorkerFactory] = ()


@dataclass(frozen=True)
class ServiceParts:
    name: str
    description: str
    version: str
    routers: Sequence[APIRouter]
    tables: RuntimeTables
    migrations: Path
    subscriptions: Sequence[Subscription] = ()
    workers: Sequence[WorkerFactory] = ()
    prepare: Prepare | None = None  # when the subscriptions or workers need state made in the lifespan
    started: Started | None = None
    max_body_bytes: int = 1 << 20
    openapi_extensions: Sequence[Callable[[dict[str, Any]], dict[str, Any]]] = field(default_factory=tuple)


def service_app(parts: ServiceParts, settings: ServiceSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        made = await parts.prepare(app) if parts.prepare is not None else RuntimeParts()
        async with start_runtime(name=parts.name, settings=settings, tables=parts.tables,
                                 migrations=parts.migrations,
                                 subscriptions=[*parts.subscriptions, *made.subscriptions],
                                 workers=[*parts.workers, *made.workers]) as runtime:
            app.state.runtime = runtime
            app.state.read_sessions = session_factory(runtime.read_engine)
            around = parts.started(app, runtime) if parts.started is not None else nullcontext()
            async with around:
                yield

    return build_app(
        service=parts.name,
        title=f"Feedback Loop — {parts.name}",
        description=parts.description,
        version=parts.version,
        settings=settings,
        lifespan=lifespan,
        routers=parts.routers,
        max_body_bytes=parts.max_body_bytes,
        openapi_extensions=parts.openapi_extensions,
    )
