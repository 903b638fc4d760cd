"""One trace from the caller's request to the webhook receiver, exported by OTLP to a real local collector.

The system runs as `make run` does, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an HTTP server in this
test that decodes the OTLP/protobuf export requests the four services send.
"""

from __future__ import annotations

import gzip
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from standardwebhooks import Webhook

from feedbackloop_testing import serve_app, wait_for
from ingest.service import raw_event_id
from tests.e2e.system import System
from tests.e2e.test_walkthrough import SECRET

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Exported:
    service: str
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    message_id: str


def collector() -> tuple[FastAPI, list[Exported]]:
    """An OTLP/HTTP trace collector (``POST /v1/traces``, protobuf) that keeps every span it is sent."""
    spans: list[Exported] = []
    app = FastAPI()

    @app.post("/v1/traces")
    async def export(request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        assert request.headers["content-type"] == "application/x-protobuf"
        message = ExportTraceServiceRequest.FromString(body)
        for resource_spans in message.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                spans.extend(
                    Exported(
                        service=attributes["service.name"],
                        name=s.name,
                        kind=SpanProto.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_"),
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(),
                        message_id=next(
                            (a.value.string_value for a in s.attributes if a.key == "messaging.message.id"), ""
                        ),
                    )
                    for s in scope_spans.spans
                )
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    return app, spans


@asynccontextmanager
async def receiver() -> AsyncIterator[tuple[str, list[str]]]:
    """A webhook receiver that verifies each delivery's signature and keeps its ``traceparent`` header."""
    traceparents: list[str] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        Webhook(SECRET).verify(await request.body(), dict(request.headers))
        traceparents.append(request.headers.get("traceparent", ""))
        return {"ok": True}

    async with serve_app(app) as url:
        yield f"{url}/hook", traceparents


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    running = System.on_free_ports(tmp_path / "var")
    yield running
    code = running.stop()
    assert code == 0, "".join(running.output[-40:])


async def test_one_trace_runs_from_the_callers_request_through_all_four_services(system: System) -> None:
    app, spans = collector()
    async with serve_app(app) as otlp, receiver() as (hook_url, received):
        system.extra_env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": otlp, "OTEL_BSP_SCHEDULE_DELAY": "200"})
        system.start()
        auth = {"authorization": f"Bearer {system.api_key}"}
        async with httpx.AsyncClient(headers=auth, timeout=10) as client:
            rule = await client.post(f"{system.url('notification')}/v1/rules", json={
                "name": "traced bugs", "team": "payments",
                "match": {"all": [{"field": "kind", "op": "eq", "value": "bug"}]},
                "channels": [{"type": "webhook", "url": hook_url, "secret": SECRET}]})
            assert rule.status_code == 201, rule.text

            trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
            body = {"source": "api", "external_id": str(uuid.uuid4()),
                    "text": "Checkout crashes on iOS when I pay with Apple Pay",
                    "customer": {"id": "acme", "plan": "enterprise"}}
            posted = await client.post(f"{system.url('ingest')}/v1/feedback", json=body,
                                        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"})
            assert posted.status_code == 202, posted.text

            feedback_id = uuid.UUID(posted.json()["feedback_ids"][0])

        def span(service: str, kind: str, name: str, **match: str) -> Exported | None:
            return next((s for s in spans if (s.service, s.kind, s.name) == (service, kind, name)
                         and all(getattr(s, k) == v for k, v in match.items())), None)

        async def hops() -> dict[str, Exported | None]:
            raw = span("ingest", "PRODUCER", "publish feedback.raw.v1", message_id=raw_event_id(feedback_id))
            trace = {"trace_id": raw.trace_id} if raw else {"trace_id": "-"}
            return {
                "server": span("ingest", "SERVER", "POST /v1/feedback", trace_id=trace_id),
                "raw": raw,
                "classify": span("classification", "CONSUMER", "process feedback.raw.v1", **trace),
                "classified": span("classification", "PRODUCER", "publish feedback.classified.v1", **trace),
                "aggregate": span("aggregation", "CONSUMER", "process feedback.classified.v1", **trace),
                "notify": span("notification", "CONSUMER", "process feedback.classified.v1", **trace),
                "deliver": span("notification", "CLIENT", "deliver webhook", **trace),
            }

        found = await wait_for(hops, lambda got: all(got.values()), timeout=30, what="a span from every hop")
        (traceparent,) = await wait_for(_now(received), bool, timeout=20, what="the webhook delivery")

    hop = {k: v for k, v in found.items() if v is not None}
    assert hop["server"].parent_id == caller_span, "the caller's traceparent is continued by ingest's server span"
    assert hop["raw"].parent_id == hop["server"].span_id, "ingest publishes in its request's span (group commit too)"
    assert hop["classify"].parent_id == hop["raw"].span_id, "the Kafka record's traceparent is the producer span"
    assert hop["classified"].parent_id == hop["classify"].span_id
    assert hop["aggregate"].parent_id == hop["notify"].parent_id == hop["classified"].span_id
    assert hop["deliver"].parent_id == hop["notify"].span_id, "the delivery worker continues the consumed event's trace"
    assert traceparent == f"00-{hop['deliver'].trace_id}-{hop['deliver'].span_id}-01", "the receiver continues it too"
    chain = [hop[k] for k in ("raw", "classify", "classified", "aggregate", "notify", "deliver")]
    assert len({s.trace_id for s in chain}) == 1 and len({s.span_id for s in chain}) == len(chain)
    assert {s.service for s in chain} == {"ingest", "classification", "aggregation", "notification"}
    assert not any(s.name.split()[-1] in ("/healthz", "/readyz", "/metrics") for s in spans), "probes are not traced"


def _now(value: list[Any]) -> Any:
    async def probe() -> list[Any]:
        return value

    return probe

