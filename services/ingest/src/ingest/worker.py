"""Retention of ingest's raw request copy: a background worker blanks ``feedback_items.raw`` (the request as
received, personal data included) of items received longer ago than ``INGEST_RAW_RETENTION_DAYS``.

What stays: the redacted item (``item``), the ids, ``content_key`` and the times: duplicates are still found, and
a replay publishes the redacted item as before. Blanking sets ``raw`` to SQL NULL.

Contract: :meth:`RawRetention.purge` blanks in batches of ``batch`` rows, each in its own short unit of work (on
SQLite: a moment of the process's write lock, which ingest's requests queue behind for one batch at most, never for
the whole purge; on PostgreSQL: row locks on the batch only). It walks ``received_at`` upwards from where it got to,
so it never rescans what it blanked since the process started. A failing batch raises (the store is away); the
worker logs it and tries again at its next round. Runs as a runtime worker (``start_runtime(workers=…)``):
``run`` returns after ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import null, select, update

from feedbackloop.db import UnitOfWorkFactory
from feedbackloop.logs import get_logger
from feedbackloop.runtime import ServiceRuntime, Worker, WorkerFactory
from ingest.config import IngestSettings
from ingest.store.models import FeedbackItem

__all__ = ["RawRetention", "raw_retention_worker"]

log = get_logger(__name__)


class RawRetention:
    """Blanks raw copies older than ``retention``; one instance per process."""

    def __init__(
        self, uow: UnitOfWorkFactory, retention: timedelta, *, batch: int = 500, interval: float = 3600.0
    ) -> None:
        if retention <= timedelta(0) or batch < 1 or interval <= 0:
            raise ValueError("retention and interval must be positive, batch at least 1")
        self._uow = uow
        self._retention = retention
        self._batch = batch
        self._interval = interval
        self._stopping = asyncio.Event()
        self._since: datetime | None = None  # everything received before it is blanked already

    async def purge(self, now: datetime | None = None) -> int:
        """Blank every raw copy received before ``now - retention``, batch by batch; how many were blanked."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        blanked = 0
        while not self._stopping.is_set():
            async with self._uow() as uow:
                query = select(FeedbackItem.feedback_id, FeedbackItem.received_at).where(
                    FeedbackItem.received_at < cutoff, FeedbackItem.raw.is_not(None)
                )
                if self._since is not None:
                    query = query.where(FeedbackItem.received_at >= self._since)
                rows = (
                    await uow.session.execute(
                        query.order_by(FeedbackItem.received_at, FeedbackItem.feedback_id).limit(self._batch)
                    )
                ).all()
                if rows:
                    await uow.session.execute(
                        update(FeedbackItem)
                        .where(FeedbackItem.feedback_id.in_([r[0] for r in rows]))
                        .values(raw=null())
                        .execution_options(synchronize_session=False)
                    )
                    await uow.commit()
            blanked += len(rows)
            if len(rows) < self._batch:
                break
            self._since = rows[-1][1]  # rows at this very instant may remain: >= keeps them in the next batch
            await asyncio.sleep(0)  # let requests waiting for the store go first
        return blanked

    async def run(self) -> None:
        log.info("raw retention started", retention_days=self._retention / timedelta(days=1), batch=self._batch)
        while not self._stopping.is_set():
            try:
                blanked = await self.purge()
                if blanked:
                    log.info("raw copies blanked", items=blanked)
            except Exception as exc:  # the store is away: the next round tries again
                log.warning("raw retention failed, retrying later", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

    def stop(self) -> None:
        self._stopping.set()


def raw_retention_worker(settings: IngestSettings) -> list[WorkerFactory]:
    """The runtime worker factories for ``settings``: one when a retention is set, none when it is off."""
    retention = settings.raw_retention
    if retention is None:
        return []

    def make(runtime: ServiceRuntime) -> Worker:
        return RawRetention(runtime.uow, retention, batch=settings.raw_retention_batch,
                            interval=settings.raw_retention_interval_seconds)

    return [make]
