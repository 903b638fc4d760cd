"""The per-request metrics and guards of :func:`feedbackloop.http.build_app` as ONE pure-ASGI layer.

It counts and times every request into ``feedbackloop_http_requests_total`` and
``feedbackloop_http_request_duration_seconds`` (route template from prometheus-fastapi-instrumentator's own route
resolution, ``unmatched`` when no route matches; the exact status; 500 for an exception), as that library's
middleware did, without its per-request ``Request``, ``Response`` and ``Info`` objects. Then it does, in this
order, what :class:`~feedbackloop.http.overload.ConcurrencyLimit`,
:class:`~feedbackloop.http.slow_clients.BodyTimeout` and :class:`~feedbackloop.http.app.BodyLimit` do as three
layers (same answers: 503 ``Service busy``, 408 problem, 413 problem), with one ``receive`` wrapper instead of
two, and it makes the request's ``SERVER`` hop current when the service records no spans
(:func:`feedbackloop.tracing.server_hop`; FastAPI's telemetry then skips its SDK span, see ``build_app``). Each
layer is a coroutine frame and each wrapper a closure per request: on a single-item POST that is a measurable
share of the CPU, for no behaviour of its own.
"""

from __future__ import annotations

import asyncio
from timeit import default_timer
from typing import Any

from opentelemetry import context as otel_context
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedbackloop import metrics
from feedbackloop.http.overload import EXEMPT_PATHS, RETRY_AFTER_SECONDS
from feedbackloop.http.problems import problem_response
from feedbackloop.http.slow_clients import SlowBody
from feedbackloop.tracing import server_hop

__all__ = ["RequestGuards"]

#: Requests that get no ``SERVER`` span (probes and scrapes), as in FastAPI's telemetry ``exclude``.
UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})


class _TooLarge(Exception):
    pass


class RequestMetrics:
    """The two HTTP metrics of one service, their labelled children looked up once per key (``labels`` takes a lock
    and builds a tuple). Routes are templates (or ``unmatched``), so the keys are bounded by the app's routes."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._latencies: dict[tuple[str, str], Any] = {}

    def record(self, method: str, route: str, status: str, seconds: float) -> None:
        key = (method, route, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = metrics.HTTP_REQUESTS.labels(self.service, method, route, status)
        counter.inc()
        latency = self._latencies.get((method, route))
        if latency is None:
            latency = self._latencies[(method, route)] = metrics.HTTP_LATENCY.labels(self.service, method, route)
        latency.observe(seconds)


class RequestGuards:
    """Every request counted and timed (see the module's docstring); at most ``limit`` requests in flight (503
    beyond, probes exempt); the body whole within ``body_seconds`` of the app's first read of it (408); at most
    ``max_bytes`` of body, by Content-Length or counted (413)."""

    def __init__(self, app: ASGIApp, *, service: str, limit: int, body_seconds: float, max_bytes: int,
                 retry_after: int = RETRY_AFTER_SECONDS) -> None:
        self.app = app
        self.service = service
        self.limit = limit
        self.body_seconds = body_seconds
        self.max_bytes = max_bytes
        self.retry_after = retry_after
        self.in_flight = 0
        self.metrics = RequestMetrics(service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = default_timer()
        route = get_route_name(HTTPConnection(scope), should_include_root_path=False) or "unmatched"
        status = 500  # what an exception escaping the app is answered with (ServerErrorMiddleware, outside)

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._guarded(scope, receive, counted)
        finally:
            self.metrics.record(scope["method"], route, str(status), max(default_timer() - started, 0.0))

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if path in EXEMPT_PATHS:
            await self._limited(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            response = problem_response(
                503,
                "Service busy",
                f"The service is handling {self.limit} requests already; retry in {self.retry_after} s.",
                instance=path,
                headers={"Retry-After": str(self.retry_after)},
            )
            await response(scope, receive, send)
            return
        self.in_flight += 1
        token = None
        try:
            if path not in UNTRACED:
                hop = self._hop(scope)
                if hop is not None:
                    token = otel_context.attach(hop)
            await self._limited(scope, receive, send)
        finally:
            if token is not None:
                otel_context.detach(token)
            self.in_flight -= 1

    def _hop(self, scope: Scope) -> otel_context.Context | None:
        traceparent: str | None = None
        states: list[str] = []
        for name, value in scope.get("headers") or ():
            if name == b"traceparent" and traceparent is None:  # the first one, as the W3C propagator reads it
                traceparent = value.decode("latin-1")
            elif name == b"tracestate":  # all of them, in order
                states.append(value.decode("latin-1"))
        return server_hop(self.service, traceparent, ",".join(states) or None)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The body timeout and the body size limit, around one ``receive`` wrapper."""
        declared = None
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                declared = value  # the last one wins, as dict(headers) would have it
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        whole = False
        seen = 0
        seconds, max_bytes = self.body_seconds, self.max_bytes

        async def guarded() -> Message:
            nonlocal deadline, whole, seen
            if whole:  # the body is in; what follows is waiting for a disconnect, which may take any time
                return await receive()
            if deadline is None:
                deadline = loop.time() + seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise SlowBody(408, f"The request body did not arrive within {seconds:g} s.") from None
            if message["type"] == "http.request":
                if not message.get("more_body", False):
                    whole = True
                seen += len(message.get("body", b""))
                if seen > max_bytes:
                    raise _TooLarge
            else:
                whole = True
            return message

        try:
            await self.app(scope, guarded, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "Content too large",
            f"The request body exceeds {self.max_bytes} bytes; split it into smaller requests.",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)
