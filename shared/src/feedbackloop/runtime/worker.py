"""One lifecycle for every background loop a service owns (retention, detection, delivery passes).

A :class:`PeriodicWorker` runs ``tick`` every ``interval`` seconds — sooner after :meth:`wake` — until
:meth:`stop`. ``tick`` may return how long to wait before the next one (a delivery due in 3 s). A failing tick
never ends the loop: a transient failure (store locked or away) is retried at the next tick, anything else is
logged with its stack first; ``last_error`` keeps it for the health check. The runtime starts and stops the
workers (``start_runtime(workers=[...])``): they run while the broker is away, since they need only the store.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from datetime import UTC, datetime

from feedbackloop.logs import get_logger
from feedbackloop.retry import sleep_unless
from feedbackloop.runtime.errors import is_transient

__all__ = ["PeriodicWorker"]

log = get_logger(__name__)


class PeriodicWorker(ABC):
    """Subclasses write ``tick``; ``run``/``stop``/``wake`` are the runtime's and the consumer's handles."""

    #: Seconds between ticks, unless ``tick`` returns its own wait.
    interval: float = 60.0

    def __init__(self, interval: float | None = None) -> None:
        if interval is not None:
            self.interval = interval
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.last_error: str | None = None
        self.last_tick_at: datetime | None = None

    @abstractmethod
    async def tick(self) -> float | None:
        """One pass of the loop's work; returns seconds until the next pass, or None for ``interval``."""

    async def run(self) -> None:
        name = type(self).__name__
        while not self._stopping.is_set():
            self._wake.clear()  # a wake() during the tick then skips the wait
            wait = self.interval
            try:
                asked = await self.tick()
                wait = self.interval if asked is None else asked
                self.last_error = None
            except Exception as exc:
                self.last_error = repr(exc)
                if is_transient(exc):
                    log.warning("worker pass failed, retrying", worker=name, error=repr(exc), retry_in=wait)
                else:
                    log.exception("worker pass failed", worker=name, retry_in=wait)
            self.last_tick_at = datetime.now(UTC)
            if not self._stopping.is_set():
                await sleep_unless(self._wake, max(wait, 0.0))

    def wake(self) -> None:
        """Tick now rather than at the end of the wait (new work was queued)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()
