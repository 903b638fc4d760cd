"""The FastAPI app every service is built on: problems, auth key store, body limit, health and metrics.

``/healthz`` answers while the process lives; ``/readyz`` checks the store, the broker and the
consumers of ``app.state.runtime`` and answers 503 naming what is not ready; ``/metrics`` is the
Prometheus text format. Every other request runs in an OpenTelemetry ``SERVER`` span made by FastAPI's own
telemetry with the service's tracer provider (:mod:`feedbackloop.tracing`), continuing the caller's
``traceparent``; events it publishes carry that trace on. Every request, probes included, is counted and
timed by prometheus-fastapi-instrumentator's middleware into ``feedbackloop_http_requests_total`` and
``feedbackloop_http_request_duration_seconds`` (:mod:`feedbackloop.metrics`), by service, method, route
template (``unmatched`` when no route matches) and status.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info
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
from feedbackloop.tracing import configure_tracing

__all__ = ["BodyLimit", "build_app"]

#: Probes and scrapes are not traced (they are still counted).
_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in _UNTRACED


def _telemetry(service: str) -> TelemetryConfig:
    """FastAPI's OpenTelemetry settings: ``SERVER`` spans on the service's own provider (not the global one: tests
    run several services in one process), nothing else. Its OTel metrics and log records are off (Prometheus and
    structlog do those), and so are its per-request operation spans (dependencies, endpoint, serialization), which
    would cost every request several SDK spans. Exporters come from :func:`configure_tracing`, not from
    ``FASTAPI_OTEL_AUTO_CONFIGURE``."""
    return {
        "tracer_provider": configure_tracing(service),
        "tracing": True,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
        "exclude": _untraced,
    }


def _instrument_metrics(app: FastAPI, service: str) -> None:
    """Count and time every request into our metrics (names and ``service`` label kept for the alerts and the
    dashboard); the library's middleware finds the route template and the status, exceptions included (500)."""

    def record(info: Info) -> None:
        route = "unmatched" if info.modified_handler == "none" else info.modified_handler  # "none": no route matched
        metrics.HTTP_REQUESTS.labels(service, info.method, route, info.modified_status).inc()
        metrics.HTTP_LATENCY.labels(service, info.method, route).observe(info.modified_duration)

    Instrumentator(should_group_status_codes=False, should_group_untemplated=True).add(record).instrument(app)


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
    app = FastAPI(
        title=title, description=description, version=version, lifespan=lifespan, telemetry=_telemetry(service)
    )
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
    _instrument_metrics(app, service)  # outermost: a refused body is counted too (FastAPI's span wraps everything)
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
