"""Classification's background loop: :class:`Learner` folds the corrections people make into the classifier.

A correction is stored and re-published at once (:mod:`classification.service.corrections`); learning it means
re-embedding every example and rebuilding the theme model, which takes a while, so it happens here, off the request:
the correction queues its example (:meth:`Learner.learn`, which wakes the loop) and one tick turns every example
queued so far into one new classifier (a burst of corrections costs one rebuild). A failed rebuild is logged and
the examples are dropped from the queue: they are in the store, and the next start (:func:`~classification.service.
live.restore`) learns them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from classification.domain.memory import LearnedExample
from feedbackloop.logs import get_logger
from feedbackloop.runtime.worker import PeriodicWorker

if TYPE_CHECKING:
    from classification.service.live import LiveState

__all__ = ["Learner"]

log = get_logger(__name__)


class Learner(PeriodicWorker):
    """Puts the queued corrected examples in force in ``live``; woken by :meth:`learn`, idle otherwise."""

    interval = 300.0  # nothing to do unless woken; the wait only bounds how long a missed wake could last

    def __init__(self, live: LiveState) -> None:
        super().__init__()
        self.live = live
        self._pending: list[LearnedExample] = []
        self._task: asyncio.Task[None] | None = None
        self.running = False

    def learn(self, example: LearnedExample) -> None:
        """Queue ``example`` and wake the loop. When no runtime runs this worker yet, it is started here (on the
        running event loop) and :meth:`close` stops it."""
        self._pending.append(example)
        if not self.running:
            self.running = True
            self._task = asyncio.create_task(self.run(), name="classification:Learner")
        self.wake()

    async def run(self) -> None:
        self.running = True
        try:
            await super().run()
        finally:
            self.running = False

    async def tick(self) -> float | None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self.live.swap(lambda c, new=batch: c.with_examples([*c.learned, *new]))  # type: ignore[misc]
            except Exception:  # the corrections are stored; the next start (restore) learns them
                log.exception("learning %d corrected examples failed", len(batch))
        return None

    async def close(self) -> None:
        """Stop the loop if :meth:`learn` started it, a rebuild under way included (what is queued or being
        learned is in the store: the next start learns it)."""
        self.stop()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
