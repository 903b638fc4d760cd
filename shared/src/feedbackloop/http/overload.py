"""Overload degrades, never locks: a cap on the requests one process handles at once, and "store busy" as a 503.

Beyond ``limit`` requests in flight, a request is answered at once with a 503 problem and ``Retry-After``, before
its body is read or the store is touched; ``/healthz``, ``/readyz`` and ``/metrics`` are never refused, so probes
and scrapes see the process as it is. The cap keeps the requests that are served few enough to get a store
connection within the engine's short ``pool_timeout`` (:func:`feedbackloop.db.create_engine`); one that still
waits longer (``sqlalchemy.exc.TimeoutError``: every connection busy) is the same 503, logged in one line
without a traceback, instead of a 500.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from feedbackloop.http.problems import problem_response
from feedbackloop.logs import get_logger

__all__ = ["EXEMPT_PATHS", "ConcurrencyLimit", "install_store_busy_handler"]

#: Never refused: liveness, readiness and scrapes must tell the truth about a busy process.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_SECONDS = 1
log = get_logger(__name__)


class ConcurrencyLimit:
    """At most ``limit`` requests in the app at once (one event loop: a plain counter is exact); the next
    answers 503 ``Service busy`` with ``Retry-After`` without waiting."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = problem_response(
                503,
                "Service busy",
                f"The service is handling {self.limit} requests already; retry in {self.retry_after} s.",
                instance=scope.get("path"),
                headers={"Retry-After": str(self.retry_after)},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def install_store_busy_handler(app: FastAPI) -> None:
    """Every store connection busy for the pool's timeout: 503 with ``Retry-After``, nothing was done."""

    @app.exception_handler(PoolTimeout)
    async def _store_busy(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("store busy: no connection free", path=request.url.path)
        return problem_response(
            503,
            "Store busy",
            "Every connection to the service's store is in use; nothing was done. Retry shortly.",
            instance=request.url.path,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
