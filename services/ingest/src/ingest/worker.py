"""Ingest's background loop: retention of the raw request copy, on the shared :class:`PeriodicWorker`.

:class:`RawRetention` blanks ``feedback_items.raw`` (the request as received, personal data included) of items
received longer ago than ``INGEST_RAW_RETENTION_DAYS``. What stays: the redacted item (``item``), the ids,
``content_key`` and the times: duplicates are still found, and a replay publishes the redacted item as before.
Blanking sets ``raw`` to SQL NULL.

Contract: :meth:`RawRetention.purge` blanks in batches of ``batch`` rows, each in its own short unit of work (on
SQLite: a moment of the process's write lock, which ingest's requests queue behind for one batch at most, never for
the whole purge; on PostgreSQL: row locks on the batch only). It walks ``received_at`` upwards from where it got to,
so it never rescans what it blanked since the process started. A failing batch raises (the store is away); the
worker logs it and tries again at its next tick. Runs as a runtime worker (``start_runtime(workers=…)``): ``run``
returns after ``stop``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from feedbackloop.db import UnitOfWorkFactory
from feedbackloop.logs import get_logger
from feedbackloop.runtime import ServiceRuntime, Worker, WorkerFactory
from feedbackloop.runtime.worker import PeriodicWorker
from ingest.config import IngestSettings
from ingest.store.repository import RawCopyRepository

__all__ = ["RawRetention", "raw_retention_worker"]

log = get_logger(__name__)


class RawRetention(PeriodicWorker):
    """Blanks raw copies older than ``retention`` every ``interval`` seconds; one instance per process."""

    def __init__(
        self, uow: UnitOfWorkFactory, retention: timedelta, *, batch: int = 500, interval: float = 3600.0
    ) -> None:
        if retention <= timedelta(0) or batch < 1 or interval <= 0:
            raise ValueError("retention and interval must be positive, batch at least 1")
        super().__init__(interval)
        self._uow = uow
        self._retention = retention
        self._batch = batch
        self._since: datetime | None = None  # everything received before it is blanked already

    async def run(self) -> None:
        log.info("raw retention started", retention_days=self._retention / timedelta(days=1), batch=self._batch)
        await super().run()

    async def tick(self) -> None:
        blanked = await self.purge()
        if blanked:
            log.info("raw copies blanked", items=blanked)

    async def purge(self, now: datetime | None = None) -> int:
        """Blank every raw copy received before ``now - retention``, batch by batch; how many were blanked."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        blanked = 0
        while not self.stopping:
            async with self._uow() as uow:
                repo = RawCopyRepository(uow.session)
                rows = await repo.received_before(cutoff, since=self._since, limit=self._batch)
                if rows:
                    await repo.blank([feedback_id for feedback_id, _ in rows])
                    await uow.commit()
            blanked += len(rows)
            if len(rows) < self._batch:
                break
            self._since = rows[-1][1]  # rows at this very instant may remain: >= keeps them in the next batch
            await asyncio.sleep(0)  # let requests waiting for the store go first
        return blanked


def raw_retention_worker(settings: IngestSettings) -> list[WorkerFactory]:
    """The runtime worker factories for ``settings``: one when a retention is set, none when it is off."""
    retention = settings.raw_retention
    if retention is None:
        return []

    def make(runtime: ServiceRuntime) -> Worker:
        return RawRetention(runtime.uow, retention, batch=settings.raw_retention_batch,
                            interval=settings.raw_retention_interval_seconds)

    return [make]
