"""The FastAPI app every service is built on: problems, auth key store, body limit, health and metrics.

``/healthz`` answers while the process lives; ``/readyz`` checks the store, the broker and the
consumers of ``app.state.runtime`` and answers 503 naming what is not ready; ``/metrics`` is the
Prometheus text format. Every other request runs in an OpenTelemetry ``SERVER`` span made by FastAPI's own
telemetry with the service's tracer provider (:mod:`feedbackloop.tracing`), continuing the caller's
``traceparent``; events it publishes carry that trace on. Every request, probes included, is counted and
timed into ``feedbackloop_http_requests_total`` and ``feedbackloop_http_request_duration_seconds``
(:mod:`feedbackloop.metrics`), by service, method, route template (``unmatched`` when no route matches) and
status, by the same pure-ASGI layer that limits requests in flight and bodies (:mod:`feedbackloop.http._guards`).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feedbackloop.http._guards import UNTRACED, RequestGuards
from feedbackloop.http.openapi import document_problems, require_declared_media_type
from feedbackloop.http.overload import install_store_busy_handler
from feedbackloop.http.problems import install_problem_handlers, problem_response
from feedbackloop.http.security_headers import install_security_headers
from feedbackloop.http.slow_clients import install_slow_body_handler
from feedbackloop.keys import KeyStore
from feedbackloop.logs import register_secrets, secret_values
from feedbackloop.settings import ServiceSettings
from feedbackloop.tracing import configure_tracing, records_spans

__all__ = ["build_app"]

def _telemetry(service: str) -> TelemetryConfig:
    """FastAPI's OpenTelemetry settings: ``SERVER`` spans on the service's own provider (not the global one: tests
    run several services in one process), nothing else. Its OTel metrics and log records are off (Prometheus and
    structlog do those), and so are its per-request operation spans (dependencies, endpoint, serialization), which
    would cost every request several SDK spans. Exporters come from :func:`configure_tracing`, not from
    ``FASTAPI_OTEL_AUTO_CONFIGURE``.

    Probes and scrapes are not traced (they are still counted). Nor does FastAPI make the span while the service
    records none (no span processor: nothing would ever see it, and the SDK span cost ~7 % of a single-item POST's
    CPU): :class:`RequestGuards` then makes the request's hop current, a non-recording span with an id of its own in
    the caller's trace, which the events it publishes continue. Decided per request, so a span processor added
    after the app was built (:func:`feedbackloop.tracing.add_span_processor`) gets FastAPI's spans from then on."""

    def untraced(scope: MutableMapping[str, Any]) -> bool:
        return scope.get("path") in UNTRACED or not records_spans(service)

    return {
        "tracer_provider": configure_tracing(service),
        "tracing": True,
        "metrics": False,
        "logs": False,
        "operation_spans": False,
        "auto_configure": False,
        "exclude": untraced,
    }


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
    in_flight = settings.max_concurrent_requests or settings.common.max_concurrent_requests
    # the request metrics, ConcurrencyLimit, BodyTimeout and BodyLimit (in that order, outermost first) as one layer,
    # with the request's trace hop when no span is recorded (see _telemetry); a refused request is counted too
    app.add_middleware(RequestGuards, service=service, limit=in_flight,
                       body_seconds=settings.common.body_timeout_seconds, max_bytes=max_body_bytes)
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

