"""The shared retry helper, the periodic worker's lifecycle and typed keyset pagination."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from feedbackloop.http import BadRequest, cursor_key, encode_cursor, keyset_page
from feedbackloop.retry import Stopped, retry_until_stopped
from feedbackloop.runtime.worker import PeriodicWorker


class Flaky:
    def __init__(self, failures: int, exc: type[Exception] = ConnectionError) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc("away")
        return "done"


async def test_retries_what_it_is_told_to_until_it_works() -> None:
    flaky, waits = Flaky(3), []
    result = await retry_until_stopped(flaky, stopping=asyncio.Event(), first=0.001, cap=0.004,
                                       retry_if=lambda e: isinstance(e, ConnectionError),
                                       on_retry=lambda exc, delay: waits.append(delay))
    assert (result, flaky.calls, len(waits)) == ("done", 4, 3)
    assert all(0 < w <= 0.004 + 0.001 for w in waits)  # capped, jitter of at most `first` on top


async def test_other_errors_propagate_at_once() -> None:
    flaky = Flaky(1, ValueError)
    with pytest.raises(ValueError):
        await retry_until_stopped(flaky, stopping=asyncio.Event(), retry_if=lambda e: isinstance(e, ConnectionError))
    assert flaky.calls == 1


async def test_a_stop_ends_the_wait() -> None:
    stopping = asyncio.Event()
    flaky = Flaky(10**6)
    task = asyncio.create_task(retry_until_stopped(flaky, stopping=stopping, first=30.0, retry_if=lambda e: True))
    await asyncio.sleep(0.05)
    stopping.set()
    with pytest.raises(Stopped):
        await asyncio.wait_for(task, 2)
    assert flaky.calls == 1


class Counting(PeriodicWorker):
    interval = 30.0

    def __init__(self, fail_first: bool = False) -> None:
        super().__init__()
        self.ticks, self.fail_first = 0, fail_first

    async def tick(self) -> float | None:
        self.ticks += 1
        if self.fail_first and self.ticks == 1:
            raise RuntimeError("boom")
        return None


async def test_worker_ticks_on_wake_survives_a_failure_and_stops() -> None:
    worker = Counting(fail_first=True)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.02)
    assert worker.ticks == 1 and worker.last_error == "RuntimeError('boom')"
    worker.wake()  # no 30 s wait: new work was queued
    await asyncio.sleep(0.02)
    assert worker.ticks == 2 and worker.last_error is None
    worker.stop()
    await asyncio.wait_for(task, 1)
    assert worker.ticks == 2


@dataclass
class Row:
    at: datetime
    id: str


def test_keyset_page_round_trips_a_typed_key() -> None:
    rows = [Row(datetime(2026, 1, d, tzinfo=UTC), f"r{d}") for d in range(1, 5)]
    items, cursor = keyset_page(rows, 3, key=lambda r: (r.at, r.id))
    assert items == rows[:3] and cursor is not None
    assert cursor_key(cursor, datetime, str) == (rows[2].at, "r3")
    assert keyset_page(rows[:3], 3, key=lambda r: (r.at, r.id)) == (rows[:3], None)
    assert cursor_key(None, datetime, str) is None
    assert cursor_key(encode_cursor([3, "x"]), float, str) == (3.0, "x")


@pytest.mark.parametrize("key", [[1, "x"], ["not a time", "x"], ["2026-01-01T00:00:00", 5], [True, "x"], ["a"]])
def test_a_cursor_of_the_wrong_shape_is_one_problem(key: list[object]) -> None:
    with pytest.raises(BadRequest) as caught:
        cursor_key(encode_cursor(key), datetime, str)
    assert caught.value.errors == [{"field": "cursor", "message": "malformed cursor"}]


async def test_a_lambda_returning_a_coroutine_is_awaited() -> None:
    flaky = Flaky(1)
    result = await retry_until_stopped(lambda: flaky(), stopping=asyncio.Event(), first=0.001, retry_if=lambda e: True)
    assert result == "done" and flaky.calls == 2
