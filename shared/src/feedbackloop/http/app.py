"""The FastAPI app every service is built on: problems, auth key store, body limit, health and metrics.

``/healthz`` answers while the process lives; ``/readyz`` checks the store, the broker and the
consumers of ``app.state.runtime`` and answers 503 naming what is not ready; ``/metrics`` is the
Prometheus text format. Every other request runs in an OpenTelemetry ``SERVER`` span that continues the
caller's ``traceparent`` (:mod:`feedbackloop.tracing`); events it publishes carry that trace on.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry.trace import Span, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedbackloop import metrics
from feedbackloop.http.openapi import document_problems, require_declared_media_type
from feedbackloop.http.overload import ConcurrencyLimit, install_store_busy_handler
from feedbackloop.http.problems import install_problem_handlers, problem_response
from feedbackloop.http.security_headers import install_security_headers
from feedbackloop.http.slow_clients import BodyTimeout, install_slow_body_handler
from feedbackloop.keys import KeyStore
from feedbackloop.logs import register_secrets, secret_values
from feedbackloop.settings import ServiceSettings
from feedbackloop.tracing import TRACE_HEADERS, server_span

__all__ = ["BodyLimit", "build_app"]

# Newer FastAPI versions trace requests themselves when a global tracer provider is set; our own middleware
# (`_Observed`) does it on every version, per service, so FastAPI's is turned off where it exists.
_NO_NATIVE_TELEMETRY: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)


def build_app(
    *,
    service: str,
    title: str,
    description: str,
    version: str,
    settings: ServiceSettings,
    lifespan: Any,
    routers: Sequence[APIRouter],
    max_body_bytes: int = 1 << 20,
    openapi_extensions: Sequence[Callable[[dict[str, Any]], dict[str, Any]]] = (),
) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan, **_NO_NATIVE_TELEMETRY)
    app.state.settings = settings
    register_secrets(secret_values(settings))  # no log line shows them, whatever logs them
    app.state.keys = KeyStore(settings.common.keys_file)
    install_problem_handlers(app)
    document_problems(app, *openapi_extensions)  # the OpenAPI document names every problem response (RFC 9457)
    install_store_busy_handler(app)
    install_slow_body_handler(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(BodyTimeout, seconds=settings.common.body_timeout_seconds)
    in_flight = settings.max_concurrent_requests or settings.common.max_concurrent_requests
    app.add_middleware(ConcurrencyLimit, limit=in_flight)
    app.add_middleware(_Observed, service=service)  # outermost: a refused body is counted and traced too
    install_security_headers(app)  # around everything, Starlette's 500 answer included
    for router in routers:
        app.include_router(router, dependencies=[Depends(require_declared_media_type)])  # 415
    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @ops.get("/readyz", summary="Store, broker and consumers are ready", responses={503: {"description": "Not ready"}})
    async def readyz(request: Request) -> Response:
        runtime = getattr(request.app.state, "runtime", None)
        checks = await runtime.checks() if runtime else {"runtime": "starting"}
        if all(v == "ok" for v in checks.values()):
            return JSONResponse({"status": "ready", "service": service, "checks": checks})
        failing = ", ".join(k for k, v in checks.items() if v != "ok")
        return problem_response(503, "Not ready", f"Not ready: {failing}.", checks=checks)

    @ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(ops)
    return app


class BodyLimit:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length or while streaming, before any is stored."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
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


class _TooLarge(Exception):
    pass


_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
_TRACE_HEADER_BYTES = frozenset(h.encode() for h in TRACE_HEADERS)


class _Observed:
    """Per request: the Prometheus count and latency by route and status, and a ``SERVER`` span continuing the
    caller's ``traceparent`` (probes and scrapes excepted), named by its route once routed. One middleware,
    one wrapper of ``send``: each layer costs every request."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if scope.get("path") in _UNTRACED:
            span_scope: AbstractContextManager[Span | None] = nullcontext()
        else:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or []
                       if k in _TRACE_HEADER_BYTES}
            span_scope = server_span(self.service, method, scope["path"], headers)
        with span_scope as span:
            try:
                await self.app(scope, receive, capture)
            finally:
                route = getattr(scope.get("route"), "path", None)
                path = route or "unmatched"
                metrics.HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
                metrics.HTTP_LATENCY.labels(self.service, method, path).observe(time.perf_counter() - started)
                if span is not None:
                    if route:
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
