"""Group commit: concurrent small requests are stored in one transaction instead of one each.

Every ``POST /v1/feedback`` and webhook delivery is acknowledged (202) only once its items are durably
stored. Stored one transaction per request, the store's single writer (SQLite) is the bottleneck: each
commit is a ``BEGIN IMMEDIATE`` … ``COMMIT`` with an fsync, and the requests queue behind one another.
:class:`GroupCommitter` queues the requests instead, and one flusher stores whatever is waiting in ONE
transaction (the ``store`` function it is given: ingest's is :func:`ingest.service.store_submissions`), then
answers each request on its own future. It knows nothing of what a request holds but its ``size`` in items.

Contract, per request:

- ``submit`` returns only after the transaction holding it committed; nothing is acknowledged before. Its
  answer is the one ``store`` gives it: a result, or an exception instance, which ``submit`` raises (ingest's
  ``NonceReplayed``). ``store`` must answer each request as it would have alone.
- A batch is flushed when ``max_items`` items are waiting, or ``linger`` seconds after its first request
  arrived, whichever comes first; while one batch commits, the next one gathers (one flusher at a time).
- When the group transaction fails, nothing of it was stored (it rolled back) and each request of the
  group is retried alone, in its own transaction: a request that cannot be stored fails alone with its
  own exception, the others are acknowledged. A store that is down fails every request of the group.
- A request bigger than ``max_items`` items (a bulk import batch) is stored on its own, as before.
- On shutdown (``aclose``) the requests still queued are flushed first; any the flusher cannot finish
  fail with ``RuntimeError`` (never a silent acknowledgement).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

from prometheus_client import Histogram

from feedbackloop.logs import get_logger

__all__ = ["GROUP_COMMIT_SIZE", "GroupCommit", "NotStored"]

log = get_logger(__name__)

S = TypeVar("S")
R = TypeVar("R")

GROUP_COMMIT_SIZE = Histogram(
    "feedbackloop_ingest_group_commit_items",
    "Items stored per group-commit transaction (concurrent requests written together)",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)
_GROUP_SIZE = GROUP_COMMIT_SIZE.labels("ingest")  # bound once: ``labels`` per flush takes a lock and a lookup


class NotStored(Exception):
    """The request's items could not be stored, even alone; nothing of it was (its transaction rolled back).

    ``__cause__`` is the store's exception. Transient (store down, disk full) or not (a row the store
    refuses): the API answers 503, and a sender retrying later gets the same answer as a first delivery.
    """


@dataclass
class _Waiting(Generic[S, R]):
    submission: S
    future: asyncio.Future[R]
    size: int
    arrived: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        # retrieved here so that an answer nobody awaits any more (client gone) is not logged as lost
        self.future.add_done_callback(lambda f: f.cancelled() or f.exception())


#: Stores requests in ONE transaction: one answer per request, in order (a result, or an exception to raise).
StoreGroup = Callable[[Sequence[S]], Awaitable[Sequence[R | Exception]]]


class GroupCommit(Generic[S, R]):
    """Stores requests in groups; use as ``async with GroupCommit(...) as committer`` in a lifespan."""

    def __init__(
        self,
        store: StoreGroup[S, R],
        *,
        size: Callable[[S], int],
        max_items: int = 256,
        linger: float = 0.002,
    ) -> None:
        if max_items < 1 or linger < 0:
            raise ValueError("max_items must be ≥ 1 and linger ≥ 0")
        self._store = store
        self._size = size
        self._max_items = max_items
        self._linger = linger
        self._queue: list[_Waiting[S, R]] = []
        self._queued_items = 0
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> GroupCommit[S, R]:
        self._task = asyncio.create_task(self._run(), name="ingest-group-commit")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def submit(self, submission: S) -> R:
        """Store ``submission`` (in a group when others wait too); its answer once committed.

        Raises the exception ``store`` answered it with (nothing of it stored), :class:`NotStored` when it
        could not be stored even alone, ``RuntimeError`` when the service is stopping.
        """
        if self._task is None or self._closing:
            raise RuntimeError("ingest is not accepting feedback: the group committer is not running")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(submission, future, max(1, self._size(submission)))
        if waiting.size >= self._max_items:
            await self._flush([waiting])
        else:
            self._queue.append(waiting)
            self._queued_items += waiting.size
            self._arrived.set()
            if self._queued_items >= self._max_items:
                self._full.set()
        # shield: a client that hangs up must not cancel the answer other code may still be setting
        return await asyncio.shield(waiting.future)

    async def aclose(self) -> None:
        """Flush what is queued, then stop the flusher; requests it could not finish fail."""
        self._closing = True
        self._arrived.set()
        self._full.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._stop(self._queue)
        self._queue.clear()

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if self._linger and self._queued_items < self._max_items and not self._closing:
                # the first request of a group waits at most `linger` for others to join it
                first = self._queue[0]
                left = self._linger - (time.monotonic() - first.arrived)
                if left > 0:
                    self._full.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), timeout=left)
            batch = self._take()
            try:
                await self._flush(batch)
            except Exception:  # a bug, not the store (whose errors _flush answers): keep serving the others
                log.exception("group commit flusher failed", requests=len(batch))

    def _take(self) -> list[_Waiting[S, R]]:
        batch: list[_Waiting[S, R]] = []
        total = 0
        while self._queue and (not batch or total + self._queue[0].size <= self._max_items):
            waiting = self._queue.pop(0)
            batch.append(waiting)
            total += waiting.size
        self._queued_items -= total
        return batch

    async def _flush(self, batch: list[_Waiting[S, R]]) -> None:
        """Store ``batch`` in one transaction; on failure, each submission alone. Every future gets its answer."""
        try:
            try:
                outcomes = await self._store([w.submission for w in batch])
            except Exception as exc:
                if len(batch) == 1:
                    self._fail(batch, exc)
                    return
                log.warning("group commit failed; storing its requests one by one", requests=len(batch),
                            error=repr(exc))
                for waiting in batch:
                    try:
                        (outcome,) = await self._store([waiting.submission])
                    except Exception as alone:
                        self._fail([waiting], alone)
                    else:
                        self._answer(waiting, outcome)
                return
            _GROUP_SIZE.observe(sum(w.size for w in batch))
            for waiting, outcome in zip(batch, outcomes, strict=True):
                self._answer(waiting, outcome)
        finally:
            # cancelled mid-flush (shutdown): whatever was not answered was not acknowledged
            self._stop(batch)

    @staticmethod
    def _answer(waiting: _Waiting[S, R], outcome: R | Exception) -> None:
        if waiting.future.done():
            return
        if isinstance(outcome, Exception):
            waiting.future.set_exception(outcome)
        else:
            waiting.future.set_result(outcome)

    @staticmethod
    def _fail(batch: list[_Waiting[S, R]], exc: Exception) -> None:
        """Answer each unanswered request with :class:`NotStored` caused by the store's ``exc``."""
        for waiting in batch:
            if waiting.future.done():
                continue
            log.warning("request not stored", items=waiting.size, error=repr(exc))
            failure = NotStored(f"not stored: {exc!r}")
            failure.__cause__ = exc
            waiting.future.set_exception(failure)

    @staticmethod
    def _stop(batch: list[_Waiting[S, R]]) -> None:
        """Answer each unanswered request with ``RuntimeError``: the service stops before storing it."""
        for waiting in batch:
            if not waiting.future.done():
                waiting.future.set_exception(RuntimeError("ingest stopped before these items were stored"))
