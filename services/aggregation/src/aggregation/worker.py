"""Aggregation's background loops, on the shared ``PeriodicWorker``: the detectors (:class:`DetectionWorker`) and
the retries of tracker issues being created (:class:`LinkWorker`).

Every ``AGGREGATION_DETECT_INTERVAL_SECONDS`` (10 s) a tick runs :func:`~aggregation.service.run_detectors`
in its own unit of work and commits. A failing tick (store locked) is logged by the base class and leaves its
hours dirty for the next tick.

Several copies on one PostgreSQL store: a tick first takes the leader lease :data:`DETECTOR_LEASE`
(``feedbackloop.db.leader_lease``, an advisory lock); a copy that does not get it skips that tick, so one copy
judges at a time and a dead leader's lease passes to the next copy that ticks. On SQLite every tick holds it
(one process per store).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aggregation.config import AggregationSettings
from aggregation.service import run_detectors
from aggregation.service.links import Trackers, retry_pending
from feedbackloop.db import leader_lease
from feedbackloop.logs import get_logger
from feedbackloop.runtime import ServiceRuntime, Worker
from feedbackloop.runtime.worker import PeriodicWorker

__all__ = ["DETECTOR_LEASE", "LINKS_LEASE", "DetectionWorker", "LinkWorker", "detection_worker", "link_worker"]

DETECTOR_LEASE = "aggregation.detector"
LINKS_LEASE = "aggregation.links"

log = get_logger(__name__)


class DetectionWorker(PeriodicWorker):
    """Runs the detectors every ``detect_interval_seconds``; ``runs`` counts the runs this copy made."""

    def __init__(self, runtime: ServiceRuntime, settings: AggregationSettings) -> None:
        super().__init__(settings.detect_interval_seconds)
        self.runtime = runtime
        self.settings = settings
        self.runs = 0

    async def tick(self) -> None:
        """One run, if this copy holds the detector lease; nothing when another copy does."""
        async with leader_lease(self.runtime.engine, DETECTOR_LEASE) as held:
            if not held:
                return
            async with self.runtime.uow() as uow:
                raised = await run_detectors(uow, self.settings, datetime.now(UTC))
                await uow.commit()
        self.runs += 1
        for insight in raised:
            log.info("insight raised" if insight.revision == 1 else "insight revised", type=insight.type,
                     title=insight.title, insight_id=str(insight.insight_id), revision=insight.revision)


def detection_worker(settings: AggregationSettings) -> Callable[[ServiceRuntime], Worker]:
    """The runtime's factory of the :class:`DetectionWorker` (``start_runtime(workers=[...])``)."""
    def make(runtime: ServiceRuntime) -> Worker:
        return DetectionWorker(runtime, settings)
    return make


class LinkWorker(PeriodicWorker):
    """Retries the tracker issues whose creation failed for a retryable reason (``service/links.py``): every
    ``link_retry_interval_seconds``, or sooner when an attempt is due sooner. One copy at a time (the
    :data:`LINKS_LEASE` lease); the issue's marker keeps a retry after a lost answer from making a second issue."""

    def __init__(self, runtime: ServiceRuntime, settings: AggregationSettings, trackers: Trackers) -> None:
        super().__init__(settings.link_retry_interval_seconds)
        self.runtime = runtime
        self.trackers = trackers

    async def tick(self) -> float | None:
        async with leader_lease(self.runtime.engine, LINKS_LEASE) as held:
            if not held:
                return None
            due_in = await retry_pending(self.runtime.uow, self.trackers)
        return None if due_in is None else min(self.interval, max(due_in, 0.05))


def link_worker(settings: AggregationSettings, trackers: Trackers) -> Callable[[ServiceRuntime], Worker]:
    def make(runtime: ServiceRuntime) -> Worker:
        return LinkWorker(runtime, settings, trackers)
    return make
