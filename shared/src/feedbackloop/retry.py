"""Retry until it works or the service stops: jittered exponential backoff, written once (tenacity underneath).

Every loop that must not give up — connecting to the broker, a batch that met a locked store, the relay, a
delivery worker's pass — retries the same way: 0.5 s, 1 s, 2 s … up to a cap, each wait with random jitter so
copies of a service that failed together do not retry in lockstep. The wait ends early when the service stops,
and then :class:`Stopped` is raised instead of trying again.

    await retry_until_stopped(producer.start, stopping=stopping, retry_if=is_transient,
                              on_retry=lambda exc, delay: log.warning("broker away", retry_in=delay))
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

__all__ = ["Stopped", "retry_until_stopped", "sleep_unless"]

T = TypeVar("T")


class Stopped(Exception):
    """The service stopped while a call was waiting to be retried."""


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``event`` is set, whichever is first; True when the event is set."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


async def retry_until_stopped(
    call: Callable[[], Awaitable[T]],
    *,
    stopping: asyncio.Event,
    retry_if: Callable[[BaseException], bool],
    first: float = 0.5,
    cap: float = 30.0,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``await call()`` until it returns; an exception ``retry_if`` accepts is retried after a backoff wait.

    Any other exception propagates at once. :class:`Stopped` is raised when ``stopping`` is set during a wait.
    """

    async def wait(seconds: float) -> None:
        if await sleep_unless(stopping, seconds):
            raise Stopped

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(exc, state.next_action.sleep)

    async def attempt() -> T:  # a coroutine function, so tenacity awaits it (a lambda returning one is not)
        return await call()

    retrying = AsyncRetrying(
        retry=retry_if_exception(retry_if),
        wait=wait_exponential_jitter(multiplier=first, max=cap, jitter=first),
        sleep=wait,
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt)
