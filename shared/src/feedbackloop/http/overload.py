"""Overload degrades, never locks: a cap on the requests one process handles at once (enforced by the request
guards, :class:`feedbackloop.http._guards.RequestGuards`), and "store busy" as a 503.

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

from feedbackloop.http.problems import problem_response
from feedbackloop.logs import get_logger

__all__ = ["EXEMPT_PATHS", "RETRY_AFTER_SECONDS", "install_store_busy_handler"]

#: Never refused: liveness, readiness and scrapes must tell the truth about a busy process.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_SECONDS = 1
log = get_logger(__name__)


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
