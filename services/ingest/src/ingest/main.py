"""``create_app()``: the ingest HTTP app and its lifespan, which owns the store, producer and relay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from feedbackloop.http import build_app
from feedbackloop.runtime import start_runtime
from ingest import __version__
from ingest.api import erasures, feedback, webhooks
from ingest.config import IngestSettings
from ingest.domain.feedback import RedactionPolicy
from ingest.domain.sources import SourceStats
from ingest.group_commit import GroupCommitter
from ingest.pseudonym_key import load_pseudonymizer
from ingest.ratelimit import RateLimits
from ingest.retention import raw_retention_worker
from ingest.store.models import runtime_tables

MIGRATIONS = Path(__file__).parent / "store" / "migrations"


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or IngestSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # before anything starts: the production profile without a key must not accept a single item
        app.state.redaction = RedactionPolicy(load_pseudonymizer(settings), settings.phone_region_list)
        async with start_runtime(
            name="ingest", settings=settings, tables=runtime_tables, migrations=MIGRATIONS,
            workers=raw_retention_worker(settings),
        ) as runtime:
            app.state.runtime = runtime
            committer = GroupCommitter(
                runtime.uow,
                duplicate_window=settings.duplicate_window,
                max_items=settings.group_commit_max_items,
                linger=settings.group_commit_linger_ms / 1000,
            )
            async with committer:
                app.state.committer = committer
                yield

    app = build_app(
        service="ingest",
        title="Feedback Loop — ingest",
        description="Takes feedback from support tools and the API, redacts personal data, stores it and "
        "publishes `feedback.raw.v1`.",
        version=__version__,
        settings=settings,
        lifespan=lifespan,
        routers=[feedback.router, webhooks.router, erasures.router],
        max_body_bytes=settings.max_body_bytes,
    )
    app.state.source_stats = SourceStats()
    app.state.rate_limits = RateLimits(settings.source_rate_per_minute, settings.key_rate_per_minute)
    return app
