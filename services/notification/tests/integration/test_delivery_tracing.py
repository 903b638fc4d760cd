"""The trace of a consumed event reaches the webhook receiver: each delivery attempt is a client span of the
event's trace, and its ``traceparent`` goes out with the request (real broker, SQLite, served app, receiver)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from notification_testkit import Receiver, classified, feedback_record, notification_settings, produce
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from feedbackloop import tracing
from feedbackloop.contracts import FEEDBACK_CLASSIFIED
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import serve_app, wait_for
from notification.main import create_app
from notification.worker import SERVICE

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
RECORD_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Notification's spans, kept in memory for this test (export is otherwise off); its tracing is reset after."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    tracing.shutdown_tracing(SERVICE)
    exporter = InMemorySpanExporter()
    tracing.add_span_processor(SERVICE, SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown_tracing(SERVICE)


def _ids(traceparent: str) -> tuple[str, str]:
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and flags == "01", traceparent
    return trace_id, span_id


def _hex(span_id: int) -> str:
    return format(span_id, "016x")


def _attr(span: ReadableSpan, key: str) -> Any:
    return (span.attributes or {}).get(key)


async def test_each_attempt_is_a_span_of_the_events_trace_and_its_traceparent_reaches_the_receiver(
        tmp_path: Path, kafka_settings: KafkaSettings, common_settings: CommonSettings, admin_key: str,
        spans: InMemorySpanExporter) -> None:
    receiver = Receiver(secrets={"traced": "traced-secret"})
    receiver.script["traced"] = [500]  # the first attempt fails, the retry succeeds
    settings = notification_settings(tmp_path, kafka_settings, common_settings, retry_schedule="0,0.2")
    await ensure_topics(kafka_settings)

    async with serve_app(receiver.app()) as hooks, serve_app(create_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {admin_key}"}) as client:
        created = await client.post("/v1/rules", json={
            "name": "traced", "team": "support", "match": {"all": [{"field": "kind", "op": "eq", "value": "bug"}]},
            "channels": [{"type": "webhook", "url": f"{hooks}/hooks/traced", "secret": "traced-secret"}]})
        assert created.status_code == 201, created.text
        await produce(kafka_settings, [feedback_record(classified(kind="bug"), event_id="evt-traced")],
                      headers={"traceparent": f"00-{TRACE_ID}-{RECORD_SPAN}-01", "tracestate": "vendor=abc"})

        async def delivery() -> dict[str, Any]:
            items = (await client.get("/v1/deliveries", params={"event_id": "evt-traced"})).json()["items"]
            found: dict[str, Any] = items[0] if items else {}
            return found

        done = await wait_for(delivery, lambda d: d.get("status") == "succeeded", what="the delivery, retried once",
                              timeout=40)
        assert done["attempts"] == 2

    first, second = receiver.at("traced")
    assert first.verified and second.verified, "trace headers do not disturb the Standard Webhooks signature"
    (first_trace, first_span), (second_trace, second_span) = (_ids(h.headers["traceparent"]) for h in (first, second))
    assert first_trace == second_trace == TRACE_ID, "the receiver continues the trace of the Kafka record"
    assert len({first_span, second_span, RECORD_SPAN}) == 3, "each attempt is a span of its own"
    assert first.headers["tracestate"] == second.headers["tracestate"] == "vendor=abc"

    finished: list[ReadableSpan] = list(spans.get_finished_spans())
    (process,) = [s for s in finished if s.name == f"process {FEEDBACK_CLASSIFIED.name}"]
    attempts = sorted((s for s in finished if s.name == "deliver webhook"),
                      key=lambda s: int(_attr(s, "notification.delivery.attempt")))
    assert process.parent is not None and process.context is not None
    assert _hex(process.parent.span_id) == RECORD_SPAN
    assert [_hex(s.context.span_id) for s in attempts if s.context] == [first_span, second_span]
    for span in attempts:
        assert span.kind == SpanKind.CLIENT and span.context is not None
        assert span.parent is not None and span.parent.span_id == process.context.span_id
        assert _hex(span.context.trace_id) == TRACE_ID
        assert _attr(span, "notification.delivery.id") == done["id"] == first.headers["webhook-id"]
        assert _attr(span, "notification.rule.id") == created.json()["id"]
        assert _attr(span, "server.address") == "127.0.0.1"
    assert [_attr(s, "notification.delivery.attempt") for s in attempts] == [1, 2]
    assert [_attr(s, "http.response.status_code") for s in attempts] == [500, 200]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.UNSET]
    assert attempts[0].status.description and attempts[0].status.description.startswith("HTTP 500")
