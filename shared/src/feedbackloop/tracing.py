"""OpenTelemetry tracing from the webhook to the notification, with W3C trace context in Kafka headers.

One SDK ``TracerProvider`` per service (made by :func:`configure_tracing`; not the global one, since tests run
several services in one process). Spans:

* ``SERVER`` ``<method> <route>`` per HTTP request: FastAPI's own telemetry, given this provider by
  :func:`feedbackloop.http.build_app`; its parent is read by the global propagator (W3C by default).
* ``PRODUCER`` ``publish <topic>`` per event raised in a unit of work (:func:`publish_headers`): its context is
  the ``traceparent``/``tracestate`` stored in the outbox row, and so sent in the Kafka record's headers.
* ``CONSUMER`` ``process <topic>`` per consumed event (:func:`consume_span`), child of the record's headers
  (missing or malformed: a new trace).
* ``CLIENT`` ``deliver <channel>`` per notification attempt (:func:`client_span`).

Why the last three are ours (on the SDK's tracer, W3C propagation as the topics' contract says): the outbox
decides a record's trace context when the event is raised, not when the relay sends it, and ``process`` must
cover the handling in the unit of work. opentelemetry-instrumentation-aiokafka wraps ``send`` (a span of the
relay's own trace, and a second ``traceparent`` header appended) and ``getmany`` (spans that end at the fetch),
and its newest release (0.66b1) pins semantic-conventions 0.66b1 where opentelemetry-sdk 1.45.2 pins 0.66b2. A
delivery attempt is one span whatever the channel (webhook, Slack, SMTP), with the delivery's ids; the receiver
continues it. opentelemetry-instrumentation-httpx would only nest a second ``CLIENT`` span for the same request
(with legacy attribute names unless ``OTEL_SEMCONV_STABILITY_OPT_IN=http``).

Configuration is the SDK's, from the standard variables: the ``TracerProvider`` reads ``OTEL_TRACES_SAMPLER``
(``_ARG``), ``OTEL_SDK_DISABLED`` and the span limits; the resource ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` (the service's name is the default ``service.name``); the batch processor
``OTEL_BSP_*``; the exporter its ``OTEL_EXPORTER_OTLP_*``. Exporters are the SDK's ``opentelemetry_traces_exporter``
entry points, by name (``otlp``: OTLP over HTTP/protobuf, the transport installed). One rule is ours: export is
**off unless** ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set or ``OTEL_TRACES_EXPORTER`` names exporters. Off,
no span processor runs and nothing is queued or sent; each Kafka hop still gets a span id of its own in the
caller's trace (a non-recording span), seen in the logs and the headers. An unreachable collector costs dropped
spans and a log line, never a failed request. :func:`flush_tracing` sends what is queued at a service's stop.

Work queued by one task and done by another keeps its trace: ingest's group commit publishes each request's
events in a copy of that request's ``contextvars`` context; notification stores :func:`inject`'s headers with each
delivery and opens a :func:`client_span` from them per attempt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
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
    "records_spans",
    "server_hop",
    "shutdown_tracing",
    "tracer",
]

log = get_logger(__name__)

#: The W3C trace-context headers carried on Kafka records and read from HTTP requests.
TRACE_HEADERS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
_IDS = RandomIdGenerator()
_NEW_TRACE_FLAGS = TraceFlags(TraceFlags.SAMPLED)
#: The SDK's plug-in point for span exporters, the one its auto-configuration reads ``OTEL_TRACES_EXPORTER`` against.
_EXPORTER_ENTRY_POINTS = "opentelemetry_traces_exporter"


@dataclass
class _Tracing:
    provider: TracerProvider
    tracer: Tracer
    recording: bool  # a span processor is installed: spans are built by the SDK, with their attributes
    disabled: bool  # OTEL_SDK_DISABLED: the SDK's no-op spans, passing the incoming context through


_services: dict[str, _Tracing] = {}


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters the environment asks for: ``[]`` unless an OTLP endpoint or ``OTEL_TRACES_EXPORTER`` is set."""
    env = os.environ if environ is None else environ
    if _true(env.get("OTEL_SDK_DISABLED")):
        return []
    chosen = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if not chosen:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if endpoint else []
    return [name for name in (n.strip().lower() for n in chosen.split(",")) if name and name != "none"]


def _exporter(name: str) -> SpanExporter | None:
    """The SDK's exporter registered under ``name``, made from the environment; None if none is installed."""
    if name == "otlp":  # the SDK maps it by OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL; only http/protobuf is installed
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        name = "otlp_proto_grpc" if (protocol or "").strip() == "grpc" else "otlp_proto_http"
    for entry in entry_points(group=_EXPORTER_ENTRY_POINTS, name=name):
        try:
            exporter: SpanExporter = entry.load()()  # endpoint, headers, timeout…: its OTEL_EXPORTER_* variables
        except Exception as exc:  # e.g. a malformed OTEL_EXPORTER_* value
            log.warning("trace exporter failed to start", exporter=name, error=repr(exc))
            return None
        return exporter
    return None


def _resource(service: str) -> Resource:
    """``service.name`` = the service unless ``OTEL_SERVICE_NAME`` or ``OTEL_RESOURCE_ATTRIBUTES`` name another."""
    from_environment = OTELResourceDetector().detect().attributes
    return Resource.create({SERVICE_NAME: service, SERVICE_NAMESPACE: "feedbackloop", **from_environment})


def configure_tracing(service: str) -> TracerProvider:
    """The service's tracer provider, made once per process and service from the environment.

    An unknown exporter name, or one that fails to start, is logged and ignored (tracing never stops a
    service from starting). Hand the result to any other instrumentation (FastAPI's telemetry gets it in ``build_app``).
    """
    found = _services.get(service)
    if found is not None:
        return found.provider
    provider = TracerProvider(resource=_resource(service))  # sampler, span limits, OTEL_SDK_DISABLED: from the env
    state = _Tracing(
        provider=provider,
        tracer=provider.get_tracer("feedbackloop"),
        recording=False,
        disabled=_true(os.environ.get("OTEL_SDK_DISABLED")),
    )
    _services[service] = state
    names = exporter_names()
    for name in names:
        exporter = _exporter(name)
        if exporter is None:
            known = sorted({e.name for e in entry_points(group=_EXPORTER_ENTRY_POINTS)} | {"otlp"})
            log.warning("trace exporter ignored: unknown or failed to start", exporter=name, known=known)
            continue
        add_span_processor(service, BatchSpanProcessor(exporter))  # OTEL_BSP_* variables apply
    if state.recording:
        log.info("exporting traces", exporters=names)
    return provider


def add_span_processor(service: str, processor: SpanProcessor) -> None:
    """Send the service's spans to ``processor`` too (an exporter of one's own, or an in-memory one in tests).

    Until a service has a span processor, its Kafka and delivery spans are not built by the SDK at all: each
    hop gets a non-recording span with a new span id in the parent's trace (flags and ``tracestate`` kept),
    which costs a few microseconds instead of tens.
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


def records_spans(service: str) -> bool:
    """True when the service's spans are built by the SDK: a span processor is installed, or ``OTEL_SDK_DISABLED``
    (the SDK's no-op spans). Otherwise each hop is a non-recording span with an id of its own (the fast path)."""
    state = _services.get(service)
    if state is None:
        configure_tracing(service)
        state = _services[service]
    return state.recording or state.disabled


def _hop_headers(parent: SpanContext) -> dict[str, str]:
    """What :func:`inject` gives for the non-recording child :func:`_start_span` would make of ``parent``, written
    directly (no span, context or propagator objects): the parent's trace, flags and ``tracestate`` with a new span
    id, or a new sampled trace when ``parent`` is not valid."""
    if not parent.is_valid:
        return {"traceparent": f"00-{_IDS.generate_trace_id():032x}-{_IDS.generate_span_id():016x}-01"}
    headers = {"traceparent": f"00-{parent.trace_id:032x}-{_IDS.generate_span_id():016x}-{parent.trace_flags:02x}"}
    if parent.trace_state:
        headers["tracestate"] = parent.trace_state.to_header()
    return headers


def server_hop(service: str, traceparent: str | None, tracestate: str | None) -> otel_context.Context | None:
    """The context of a request's ``SERVER`` hop when the service records no spans (see :func:`records_spans`):
    a non-recording span with a new id in the caller's trace (``traceparent``; missing or malformed: a new trace),
    as the SDK's span would have continued it. None when the service records spans (FastAPI's telemetry makes
    the span then)."""
    if records_spans(service):
        return None
    carrier = {"traceparent": traceparent} if traceparent else {}
    if traceparent and tracestate:
        carrier["tracestate"] = tracestate
    parent = trace.get_current_span(_PROPAGATOR.extract(carrier, context=otel_context.Context())).get_span_context() \
        if carrier else trace.INVALID_SPAN_CONTEXT
    if parent.is_valid:
        ids = SpanContext(parent.trace_id, _IDS.generate_span_id(), False, parent.trace_flags, parent.trace_state)
    else:
        ids = SpanContext(_IDS.generate_trace_id(), _IDS.generate_span_id(), False, _NEW_TRACE_FLAGS)
    return trace.set_span_in_context(NonRecordingSpan(ids))  # on the current context, as FastAPI's span is


def publish_headers(service: str, topic: str, event_id: str) -> dict[str, str]:
    """Record a ``PRODUCER`` span ``publish <topic>`` (child of the current span, or a new trace) and return
    its trace-context headers, to be stored with the event and sent with its Kafka record.

    When the service records no spans, the span would be a non-recording one that only lends its ids to the
    headers: the headers are then written directly (per event, a few microseconds instead of tens; a 1,000-item
    batch publishes 1,000 events)."""
    state = _services.get(service)
    if state is not None and not state.recording and not state.disabled:
        return _hop_headers(trace.get_current_span().get_span_context())
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
