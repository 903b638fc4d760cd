"""``create_app()``: the ingest app; its lifespan owns the store, the producer, the relay and the group commit."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI

from feedbackloop.runtime import ServiceRuntime
from feedbackloop.service_app import RuntimeParts, ServiceParts, service_app
from ingest import __version__
from ingest.api import erasures, feedback, webhooks
from ingest.api.ratelimit import RateLimits
from ingest.config import IngestSettings, load_pseudonymizer
from ingest.domain.feedback import RedactionPolicy
from ingest.domain.sources import SourceStats
from ingest.service import GroupCommitter
from ingest.store import MIGRATIONS
from ingest.store.models import runtime_tables
from ingest.worker import raw_retention_worker

__all__ = ["MIGRATIONS", "create_app"]

#: Allocations between two young-generation collections while ingest serves (CPython's default: 700). A
#: 1,000-item batch allocates some 100,000 objects, most of them alive until its commit: at 700 the collector ran
#: thousands of times a second and, with 32 batches in flight, full collections took ~23 % of the process's CPU
#: (4.6 of 19.5 s in `make bench-ingest`'s batch scenario); at 10,000 they took ~8 % and CPU per batch fell ~16 %.
GC_YOUNG_THRESHOLD = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """The young-generation threshold raised while the app serves, and put back after (tests run several apps in
    one process). Cycles are still collected, only in larger steps."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], GC_YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    async def prepare(app: FastAPI) -> RuntimeParts:
        # before anything starts: the production profile without a key must not accept a single item
        app.state.redaction = RedactionPolicy(load_pseudonymizer(settings), settings.phone_region_list)
        return RuntimeParts()

    @asynccontextmanager
    async def started(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        async with GroupCommitter(runtime.uow, duplicate_window=settings.duplicate_window,
                                  max_items=settings.group_commit_max_items,
                                  linger=settings.group_commit_linger_ms / 1000) as committer:
            app.state.committer = committer
            with _fewer_collections():
                yield

    app = service_app(ServiceParts(
        name="ingest",
        description="Takes feedback from support tools and the API, redacts personal data, stores it and "
        "publishes `feedback.raw.v1`.",
        version=__version__,
        routers=[feedback.router, webhooks.router, erasures.router],
        tables=runtime_tables,
        migrations=MIGRATIONS,
        workers=raw_retention_worker(settings),
        prepare=prepare,
        started=started,
        max_body_bytes=settings.max_body_bytes,
    ), settings)
    app.state.source_stats = SourceStats()
    app.state.rate_limits = RateLimits(settings.source_rate_per_minute, settings.key_rate_per_minute)
    return app
