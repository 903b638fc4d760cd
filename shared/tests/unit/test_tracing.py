"""W3C trace context through OpenTelemetry spans: headers in, spans out, headers on; and the exporter switch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from feedbackloop import tracing
from feedbackloop.http import build_app
from feedbackloop.settings import CommonSettings, ServiceSettings
from feedbackloop_testing import serve_app

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
PARENT = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, InMemorySpanExporter]]:
    """A fresh service name whose spans are kept in memory (the default environment: no exporter)."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    service = f"svc-{uuid.uuid4().hex[:8]}"
    exporter = InMemorySpanExporter()
    tracing.add_span_processor(service, SimpleSpanProcessor(exporter))
    yield service, exporter
    tracing.shutdown_tracing(service)


def ids(traceparent: str) -> tuple[str, str]:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1, "sampled"
    return trace_id, span_id


def by_name(exporter: InMemorySpanExporter) -> dict[str, ReadableSpan]:
    return {s.name: s for s in exporter.get_finished_spans()}


def test_a_consumed_event_continues_the_trace_and_its_publish_is_a_child(
    recorded: tuple[str, InMemorySpanExporter],
) -> None:
    service, exporter = recorded
    incoming = {"traceparent": PARENT, "tracestate": "vendor=abc"}
    with tracing.consume_span(service, "feedback.raw.v1", incoming, {"messaging.message.id": "e1"}) as span:
        outgoing = tracing.publish_headers(service, "feedback.classified.v1", "e2")
        current = tracing.log_ids()
    trace_id, span_id = ids(outgoing["traceparent"])
    assert trace_id == PARENT_TRACE and span_id != PARENT_SPAN
    assert outgoing["tracestate"] == "vendor=abc", "tracestate travels on with the trace"
    assert current == {"trace_id": PARENT_TRACE, "span_id": format(span.get_span_context().span_id, "016x")}

    spans = by_name(exporter)
    consume, publish = spans["process feedback.raw.v1"], spans["publish feedback.classified.v1"]
    assert consume.kind is SpanKind.CONSUMER and publish.kind is SpanKind.PRODUCER
    assert consume.parent is not None and format(consume.parent.span_id, "016x") == PARENT_SPAN
    assert publish.parent is not None and publish.parent.span_id == consume.context.span_id
    assert format(publish.context.span_id, "016x") == span_id, "the header is the producer span's own context"
    assert publish.attributes is not None and publish.attributes["messaging.message.id"] == "e2"
    assert consume.resource.attributes["service.name"] == service


def test_without_a_span_processor_each_hop_still_gets_a_span_id_in_the_callers_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    service = f"quiet-{uuid.uuid4().hex[:6]}"
    try:
        with tracing.consume_span(service, "t", {"traceparent": PARENT, "tracestate": "v=1"}) as span:
            assert not span.is_recording()
            hop = tracing.current_traceparent()
            outgoing = tracing.publish_headers(service, "u", "e")
        root = tracing.publish_headers(service, "u", "e")
    finally:
        tracing.shutdown_tracing(service)
    assert hop is not None and ids(hop)[0] == PARENT_TRACE and ids(hop)[1] != PARENT_SPAN
    assert ids(outgoing["traceparent"])[0] == PARENT_TRACE and outgoing["tracestate"] == "v=1"
    assert len({ids(hop)[1], ids(outgoing["traceparent"])[1], PARENT_SPAN}) == 3
    assert root["traceparent"].endswith("-01") and ids(root["traceparent"])[0] != PARENT_TRACE


def test_extract_and_inject_round_trip() -> None:
    headers = {"traceparent": PARENT, "tracestate": "a=1,b=2"}
    assert tracing.inject(tracing.extract(headers)) == headers


@pytest.mark.parametrize(
    "header",
    [
        None,
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper case is invalid
    ],
)
def test_a_missing_or_malformed_traceparent_starts_a_new_trace(
    recorded: tuple[str, InMemorySpanExporter], header: str | None
) -> None:
    service, exporter = recorded
    assert tracing.inject(tracing.extract({} if header is None else {"traceparent": header})) == {}
    with tracing.consume_span(service, "t", {} if header is None else {"traceparent": header}):
        outgoing = tracing.publish_headers(service, "u", "e")
    trace_id, _ = ids(outgoing["traceparent"])
    assert trace_id not in (PARENT_TRACE, "0" * 32)
    assert by_name(exporter)["process t"].parent is None


def test_a_publish_outside_any_span_starts_a_trace(recorded: tuple[str, InMemorySpanExporter]) -> None:
    service, exporter = recorded
    first, second = (tracing.publish_headers(service, "t", str(n)) for n in range(2))
    assert ids(first["traceparent"])[0] != ids(second["traceparent"])[0]
    assert tracing.current_traceparent() is None and tracing.log_ids() == {"trace_id": None, "span_id": None}
    assert all(s.parent is None for s in exporter.get_finished_spans())


def test_an_error_escaping_a_consumer_span_is_recorded(recorded: tuple[str, InMemorySpanExporter]) -> None:
    service, exporter = recorded
    with pytest.raises(ValueError), tracing.consume_span(service, "t", {"traceparent": PARENT}):
        raise ValueError("boom")
    span = by_name(exporter)["process t"]
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


async def test_an_http_request_is_a_server_span_continuing_the_callers_trace(
    recorded: tuple[str, InMemorySpanExporter], common_settings: CommonSettings
) -> None:
    service, exporter = recorded
    router = APIRouter()

    @router.get("/echo/{name}")
    async def echo(name: str) -> dict[str, str | None]:
        return {"traceparent": tracing.current_traceparent()}

    app = build_app(service=service, title="t", description="t", version="0", settings=ServiceSettings(
        common=common_settings), lifespan=None, routers=[router])
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        seen = (await client.get("/echo/x", headers={"traceparent": PARENT})).json()["traceparent"]
        fresh = (await client.get("/echo/y")).json()["traceparent"]
        assert (await client.get("/healthz")).status_code == 200
    assert ids(seen)[0] == PARENT_TRACE and ids(fresh)[0] != PARENT_TRACE
    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in spans] == ["GET /echo/{name}", "GET /echo/{name}"], "probes are not traced"
    assert spans[0].parent is not None and format(spans[0].parent.span_id, "016x") == PARENT_SPAN
    assert format(spans[0].context.span_id, "016x") == ids(seen)[1]
    assert spans[0].attributes is not None and spans[0].attributes["http.response.status_code"] == 200
    assert spans[1].parent is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, []),
    ],
)
def test_export_is_off_unless_the_environment_asks(env: dict[str, str], expected: list[str]) -> None:
    assert tracing.exporter_names(env) == expected


def processors(provider: TracerProvider) -> tuple[object, ...]:
    return tuple(provider._active_span_processor._span_processors)


def test_no_exporter_means_no_span_processor_and_an_endpoint_adds_one(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    quiet, loud = f"q-{uuid.uuid4().hex[:6]}", f"l-{uuid.uuid4().hex[:6]}"
    try:
        assert processors(tracing.configure_tracing(quiet)) == ()
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        assert len(processors(tracing.configure_tracing(loud))) == 1
    finally:
        tracing.shutdown_tracing(quiet)
        tracing.shutdown_tracing(loud)


def test_a_disabled_sdk_passes_the_trace_context_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    service = f"off-{uuid.uuid4().hex[:6]}"
    try:
        with tracing.consume_span(service, "t", {"traceparent": PARENT}):
            assert tracing.publish_headers(service, "u", "e")["traceparent"] == PARENT
        assert tracing.publish_headers(service, "u", "e") == {}
    finally:
        tracing.shutdown_tracing(service)


def test_a_client_span_continues_stored_headers_and_gives_the_headers_to_send(
    recorded: tuple[str, InMemorySpanExporter],
) -> None:
    service, exporter = recorded
    with tracing.client_span(service, "deliver webhook", {"traceparent": PARENT}, {"url.full": "http://x"}):
        sent = tracing.inject()
    span = by_name(exporter)["deliver webhook"]
    assert span.kind is SpanKind.CLIENT and span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN
    assert ids(sent["traceparent"]) == (PARENT_TRACE, format(span.context.span_id, "016x"))


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME",
                 "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"):
        monkeypatch.delenv(name, raising=False)


def test_the_sdk_reads_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    plain, named = f"p-{uuid.uuid4().hex[:6]}", f"n-{uuid.uuid4().hex[:6]}"
    try:
        resource = tracing.configure_tracing(plain).resource.attributes
        assert (resource["service.name"], resource["service.namespace"]) == (plain, "feedbackloop")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
        provider = tracing.configure_tracing(named)
        assert provider.resource.attributes["service.name"] == "renamed"
        assert provider.resource.attributes["deployment.environment.name"] == "staging"
        assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
    finally:
        tracing.shutdown_tracing(plain)
        tracing.shutdown_tracing(named)


def test_exporters_are_the_sdks_by_name_and_an_unknown_one_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    _clean_env(monkeypatch)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console,otlp,nonesuch")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    service = f"e-{uuid.uuid4().hex[:6]}"
    try:
        exporters = [p.span_exporter for p in processors(tracing.configure_tracing(service))]  # type: ignore[attr-defined]
    finally:
        tracing.shutdown_tracing(service)
    assert [type(e) for e in exporters] == [ConsoleSpanExporter, OTLPSpanExporter]
    assert exporters[1]._endpoint == "http://127.0.0.1:9/v1/traces", "the exporter reads its OTEL_EXPORTER_OTLP_* vars"


async def test_a_failed_request_is_an_error_span_and_probes_and_unknown_paths_are_not_routes(
    recorded: tuple[str, InMemorySpanExporter], common_settings: CommonSettings
) -> None:
    service, exporter = recorded
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app = build_app(service=service, title="t", description="t", version="0", settings=ServiceSettings(
        common=common_settings), lifespan=None, routers=[router])
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/boom", headers={"traceparent": PARENT})).status_code == 500
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/metrics")).status_code == 200
    failed, missing = (s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert failed.name == "GET /boom" and failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None and failed.attributes["http.response.status_code"] == 500
    assert failed.parent is not None and format(failed.parent.span_id, "016x") == PARENT_SPAN
    assert missing.name == "GET" and missing.attributes is not None and "http.route" not in missing.attributes


async def test_a_disabled_sdk_passes_an_http_callers_trace_context_through(
    monkeypatch: pytest.MonkeyPatch, common_settings: CommonSettings
) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    service = f"off-{uuid.uuid4().hex[:6]}"
    router = APIRouter()

    @router.post("/publish")
    async def publish() -> dict[str, str]:
        return tracing.publish_headers(service, "t", "e")

    try:
        app = build_app(service=service, title="t", description="t", version="0", settings=ServiceSettings(
            common=common_settings), lifespan=None, routers=[router])
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
            sent = (await client.post("/publish", headers={"traceparent": PARENT})).json()
    finally:
        tracing.shutdown_tracing(service)
    assert sent == {"traceparent": PARENT}


async def test_without_a_span_processor_a_request_still_continues_the_callers_trace(
    monkeypatch: pytest.MonkeyPatch, common_settings: CommonSettings
) -> None:
    """No span processor: FastAPI makes no SDK span, the request's hop is a non-recording span with an id of its
    own in the caller's trace (flags and tracestate kept). A processor added later gets SERVER spans from then on."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    service = f"hop-{uuid.uuid4().hex[:8]}"
    router = APIRouter()

    @router.get("/echo")
    async def echo() -> dict[str, str]:
        return tracing.inject()

    app = build_app(service=service, title="t", description="t", version="0", settings=ServiceSettings(
        common=common_settings), lifespan=None, routers=[router])
    exporter = InMemorySpanExporter()
    try:
        async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
            unsampled = f"00-{PARENT_TRACE}-{PARENT_SPAN}-00"
            seen = (await client.get("/echo", headers={"traceparent": unsampled, "tracestate": "v=1"})).json()
            fresh = [(await client.get("/echo")).json()["traceparent"] for _ in range(2)]
            malformed = (await client.get("/echo", headers={"traceparent": "00-zz"})).json()["traceparent"]
            tracing.add_span_processor(service, SimpleSpanProcessor(exporter))
            recorded = (await client.get("/echo", headers={"traceparent": PARENT})).json()["traceparent"]
    finally:
        tracing.shutdown_tracing(service)
    _, trace_id, span_id, flags = seen["traceparent"].split("-")
    assert (trace_id, flags, seen["tracestate"]) == (PARENT_TRACE, "00", "v=1") and span_id != PARENT_SPAN
    assert all(ids(t)[0] != PARENT_TRACE for t in [*fresh, malformed]) and fresh[0] != fresh[1]
    spans = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(spans) == 1 and format(spans[0].context.span_id, "016x") == ids(recorded)[1]
    assert ids(recorded)[0] == PARENT_TRACE


def test_without_a_span_processor_each_publish_gets_a_span_id_in_the_current_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    service = f"pub-{uuid.uuid4().hex[:8]}"
    try:
        with tracing.consume_span(service, "t", {"traceparent": PARENT, "tracestate": "a=1,b=2"}) as span:
            hop = format(span.get_span_context().span_id, "016x")
            inside = [tracing.publish_headers(service, "u", f"e{n}") for n in range(3)]
        outside = tracing.publish_headers(service, "u", "e")
    finally:
        tracing.shutdown_tracing(service)
    assert all(ids(h["traceparent"])[0] == PARENT_TRACE and h["tracestate"] == "a=1,b=2" for h in inside)
    assert len({ids(h["traceparent"])[1] for h in inside} | {hop, PARENT_SPAN}) == 5
    assert ids(outside["traceparent"])[0] != PARENT_TRACE and "tracestate" not in outside
