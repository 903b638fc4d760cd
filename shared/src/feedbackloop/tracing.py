"""OpenTelemetry tracing from the webhook to the notification, with W3C trace context in Kafka headers.

One :class:`~opentelemetry.sdk.trace.TracerProvider` per service (``service.name`` = the service), made
on first use or by :func:`configure_tracing` at start. Spans:

* ``SERVER`` — each HTTP request (:func:`server_span`, from the shared ASGI middleware); its parent is the
  request's ``traceparent``/``tracestate`` headers when a caller sent valid ones.
* ``PRODUCER`` ``publish <topic>`` — each event raised in a unit of work (:func:`publish_headers`); the
  headers written into the outbox row, and so into the Kafka record, are *this span's* context.
* ``CONSUMER`` ``process <topic>`` — each consumed event (:func:`consume_span`); its parent comes from the
  record's ``traceparent``/``tracestate`` headers, so any Kafka client that speaks W3C trace context (or
  any OpenTelemetry user) continues or starts the trace. A missing or malformed header starts a new trace.

Propagation is always the W3C :class:`TraceContextTextMapPropagator` (header names ``traceparent`` and
``tracestate``), whatever ``OTEL_PROPAGATORS`` says, because the topics' contract names those headers.

Export is **off by default**: no span processor is installed, so nothing is queued, no thread runs and
nothing is sent; each hop still gets a span id of its own in the caller's trace (a non-recording span,
built without the SDK's attribute work), seen in the logs as ``trace_id``/``span_id`` and in the
headers. The standard variables switch it on: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) → OTLP over HTTP/protobuf; ``OTEL_TRACES_EXPORTER`` = ``otlp``,
``console`` or ``none`` (comma-separated) overrides that choice. ``OTEL_SDK_DISABLED=true`` turns the
SDK off: no spans at all, incoming trace context is passed through unchanged. Export runs in the
SDK's batch processor thread (``OTEL_BSP_*`` variables apply); an unreachable collector costs dropped
spans and a log line, never a failed request or event. :func:`flush_tracing` sends what is queued at a
service's stop; the SDK's exit hook shuts the exporters down.

Work queued by one task and done by another keeps its trace by carrying the context over: ingest's group
commit publishes each request's events inside a copy of that request's ``contextvars`` context; notification
stores :func:`inject`'s headers with each delivery and opens a :func:`client_span` from them per attempt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from feedbackloop.logs import get_logger

__all__ = [
    "TRACE_HEADERS",
    "add_span_processor",
    "client_span",
    "configure_tracing",
    "consume_span",
    "current_traceparent",
    "exporter_names",
    "extract",
    "flush_tracing",
    "inject",
    "log_ids",
    "publish_headers",
    "server_span",
    "shutdown_tracing",
    "tracer",
]

log = get_logger(__name__)

#: The W3C trace-context headers carried on Kafka records and read from HTTP requests.
TRACE_HEADERS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
_IDS = RandomIdGenerator()
_NEW_TRACE_FLAGS = TraceFlags(TraceFlags.SAMPLED)


@dataclass
class _Tracing:
    provider: TracerProvider
    tracer: Tracer
    recording: bool  # a span processor is installed: spans are built by the SDK, with their attributes
    disabled: bool  # OTEL_SDK_DISABLED: the SDK's no-op spans, passing the incoming context through


_services: dict[str, _Tracing] = {}
_EXPORTERS = ("otlp", "console")


def exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters the environment asks for: ``[]`` unless an OTLP endpoint or ``OTEL_TRACES_EXPORTER`` is set."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if not chosen:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if endpoint else []
    return [name for name in (n.strip().lower() for n in chosen.split(",")) if name and name != "none"]


def _exporter(name: str) -> SpanExporter | None:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout, compression: the standard OTEL_EXPORTER_OTLP_* vars
    return None


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> TracerProvider:
    """The service's tracer provider, made once per process and service from the environment.

    Unknown exporter names are logged and ignored (tracing never stops a service from starting). The
    provider is not made the global one: tests run several services in one process, each with its own
    ``service.name``; hand :func:`configure_tracing`'s result to any other instrumentation.
    """
    found = _services.get(service)
    if found is not None:
        return found.provider
    env = os.environ if environ is None else environ
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service, SERVICE_NAMESPACE: "feedbackloop"}),
    )
    state = _Tracing(
        provider=provider,
        tracer=provider.get_tracer("feedbackloop"),
        recording=False,
        disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
    )
    _services[service] = state
    for name in exporter_names(env):
        exporter = _exporter(name)
        if exporter is None:
            log.warning("unknown trace exporter ignored", exporter=name, known=list(_EXPORTERS))
            continue
        add_span_processor(service, BatchSpanProcessor(exporter))
    if state.recording:
        log.info("exporting traces", exporters=exporter_names(env))
    return provider


def add_span_processor(service: str, processor: SpanProcessor) -> None:
    """Send the service's spans to ``processor`` too (an exporter of one's own, or an in-memory one in tests).

    Until a service has a span processor, its spans are not built by the SDK at all: each hop gets a
    non-recording span with a new span id in the parent's trace (flags and ``tracestate`` kept), which
    costs a few microseconds instead of tens.
    """
    configure_tracing(service)
    state = _services[service]
    state.provider.add_span_processor(processor)
    state.recording = True


def flush_tracing(service: str, timeout_millis: int = 5_000) -> None:
    """Send the spans still queued for the service's exporters (at most ``timeout_millis``); never raises."""
    state = _services.get(service)
    if state is not None and state.recording:
        state.provider.force_flush(timeout_millis)


def shutdown_tracing(service: str) -> None:
    """Flush and stop the service's exporters; the next use makes a new provider. (A process exiting does this
    by itself, through the SDK's exit hook.)"""
    state = _services.pop(service, None)
    if state is not None:
        state.provider.shutdown()


def tracer(service: str) -> Tracer:
    """The service's SDK tracer (configuring tracing from the environment on first use)."""
    configure_tracing(service)
    return _services[service].tracer


def _start_span(
    service: str, name: str, kind: SpanKind, attributes: Mapping[str, Any], context: otel_context.Context | None = None
) -> Span:
    state = _services.get(service)
    if state is None:
        configure_tracing(service)
        state = _services[service]
    if state.recording or state.disabled:
        return state.tracer.start_span(name, context=context, kind=kind, attributes=attributes)
    parent = trace.get_current_span(context).get_span_context()
    if parent.is_valid:
        ids = SpanContext(parent.trace_id, _IDS.generate_span_id(), False, parent.trace_flags, parent.trace_state)
    else:
        ids = SpanContext(_IDS.generate_trace_id(), _IDS.generate_span_id(), False, _NEW_TRACE_FLAGS)
    return NonRecordingSpan(ids)


def extract(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context in ``headers`` (``traceparent``/``tracestate``); an empty one, i.e. a new trace, if
    the ``traceparent`` is missing or malformed."""
    return _PROPAGATOR.extract(dict(headers or {}), context=otel_context.Context())


def inject(context: otel_context.Context | None = None) -> dict[str, str]:
    """The ``traceparent`` (and ``tracestate`` when there is one) of ``context`` (default: the current one);
    empty when there is no valid span in it."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span, or None outside any span."""
    return inject().get("traceparent")




def log_ids(span: Span | None = None) -> dict[str, str | None]:
    """``trace_id`` and ``span_id`` (hex) of ``span`` (default: the current one) for log lines; None outside a trace."""
    ctx = (span or trace.get_current_span()).get_span_context()
    if not ctx.is_valid:
        return {"trace_id": None, "span_id": None}
    return {"trace_id": trace.format_trace_id(ctx.trace_id), "span_id": trace.format_span_id(ctx.span_id)}


@contextmanager
def _active(span: Span) -> Iterator[Span]:
    """Make ``span`` current, with its ids bound to log lines, until the block ends; then end it. An exception
    escaping the block is recorded on the span (status ERROR) and re-raised."""
    token = otel_context.attach(trace.set_span_in_context(span))
    log_tokens = structlog.contextvars.bind_contextvars(**log_ids(span))
    try:
        yield span
    except BaseException as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        structlog.contextvars.reset_contextvars(**log_tokens)
        otel_context.detach(token)
        span.end()


def server_span(service: str, method: str, path: str, headers: Mapping[str, str]) -> AbstractContextManager[Span]:
    """A ``SERVER`` span around one HTTP request, child of the caller's trace context if it sent one.

    The caller sets ``http.response.status_code`` and may rename the span to its route.
    """
    attributes = {"http.request.method": method, "url.path": path}
    return _active(_start_span(service, f"{method} {path}", SpanKind.SERVER, attributes, extract(headers)))


def consume_span(
    service: str, topic: str, headers: Mapping[str, str], attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[Span]:
    """A ``CONSUMER`` span ``process <topic>`` around handling one event, child of the record's trace context.

    While it is current, events published (:func:`publish_headers`) continue its trace and log lines
    carry its ``trace_id`` and ``span_id``.
    """
    names = {"messaging.system": "kafka", "messaging.operation.type": "process", "messaging.destination.name": topic}
    return _active(
        _start_span(service, f"process {topic}", SpanKind.CONSUMER, {**names, **(attributes or {})}, extract(headers))
    )


def client_span(
    service: str, name: str, parent: Mapping[str, str] | None, attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[Span]:
    """A ``CLIENT`` span (e.g. one webhook delivery attempt) in the trace of ``parent`` (stored trace-context
    headers; None or malformed: a new trace). Inside it, :func:`inject` gives the headers to send with the
    request, so the receiver continues the trace."""
    return _active(_start_span(service, name, SpanKind.CLIENT, dict(attributes or {}), extract(parent)))


def publish_headers(service: str, topic: str, event_id: str) -> dict[str, str]:
    """Record a ``PRODUCER`` span ``publish <topic>`` (child of the current span, or a new trace) and return
    its trace-context headers, to be stored with the event and sent with its Kafka record."""
    span = _start_span(
        service,
        f"publish {topic}",
        SpanKind.PRODUCER,
        {
            "messaging.system": "kafka",
            "messaging.operation.type": "create",
            "messaging.destination.name": topic,
            "messaging.message.id": event_id,
        },
    )
    try:
        return inject(trace.set_span_in_context(span))
    finally:
        span.end()
