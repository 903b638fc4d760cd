"""Benchmark: what OpenTelemetry tracing costs the consumer, against the hand-rolled ``traceparent`` it replaced.

    .venv/bin/python shared/bench/tracing_overhead.py [--rounds 7] [--batch 200]

Both measure the CPU time of the whole process (``time.process_time``: the event loop, aiosqlite's
thread and the span processor's thread), which other processes' load disturbs far less than the wall
clock. Two measurements, each mode run in alternating rounds (in a rotating order, so machine load
hits every mode alike; the table gives the median round):

* **per event** — the tracing work alone for one consumed event that publishes one event: start the
  ``process`` span from the record's headers, bind the log ids, record the ``publish`` span and inject
  its headers.
* **consumer batch** — ``Consumer._handle`` on a real SQLite file: ``--batch`` events in one unit of
  work, each in a savepoint, each publishing one event into the outbox (what classification does).

Modes: ``before`` (the hand-rolled context variable + ``child_traceparent`` of the previous
``feedbackloop.tracing``, re-created here); ``otel`` (the default, no exporter: no span processor, so
each hop gets a non-recording span with ids only); ``otel-disabled`` (``OTEL_SDK_DISABLED=true``);
``otel+export`` (a batch span processor feeding an exporter that discards: full SDK spans, i.e. the
cost inside the service of exporting, without the network).
Prints a table and writes ``var/bench/tracing.json`` with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from sqlalchemy import MetaData

import feedbackloop.db.uow as uow_module
import feedbackloop.runtime.consumer as consumer_module
from feedbackloop import tracing
from feedbackloop.contracts import FEEDBACK_RAW, RawFeedback, encode, feedback_id_for
from feedbackloop.contracts.envelope import Envelope, new_envelope
from feedbackloop.db import UnitOfWork, UnitOfWorkFactory, WriteLock, add_runtime_tables, create_engine, session_factory
from feedbackloop.logs import bind_event
from feedbackloop.runtime import Consumer, Subscription
from feedbackloop.settings import KafkaSettings

PARENT = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
MODES = ("before", "otel", "otel-disabled", "otel+export")


# --- the hand-rolled tracing this replaced (feedbackloop/tracing.py before OpenTelemetry) -------------
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)


def _child_traceparent(parent: str | None) -> str:
    match = _TRACEPARENT.match(parent or "")
    if not match or match.group(1) == "0" * 32:
        return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"


@contextmanager
def _before_consume_span(service: str, topic: str, headers: Mapping[str, str], attributes: Any = None) -> Iterator[Any]:
    """What the consumer did per event before: the context variable set, the trace id bound to the logs."""
    traceparent = headers.get("traceparent")
    token = _current.set(traceparent)
    log_tokens = bind_event("", traceparent)
    try:
        yield _NoSpan()
    finally:
        structlog.contextvars.reset_contextvars(**log_tokens)
        _current.reset(token)


def _before_publish_headers(service: str, topic: str, event_id: str) -> dict[str, str]:
    return {"traceparent": _child_traceparent(_current.get())}


class _NoSpan:
    def set_status(self, *args: Any) -> None:
        pass

    def record_exception(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Discard(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


# --- set-up of each mode ------------------------------------------------------------------------------
@contextmanager
def mode(name: str) -> Iterator[str]:
    """Patch the consumer and the unit of work for ``name``; yields the service name to use."""
    saved = (consumer_module.consume_span, uow_module.publish_headers)
    if name == "before":
        consumer_module.consume_span = _before_consume_span  # type: ignore[assignment]
        uow_module.publish_headers = _before_publish_headers
    try:
        yield f"bench-{name}"
    finally:
        consumer_module.consume_span, uow_module.publish_headers = saved


def configure_modes() -> None:
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        os.environ.pop(var, None)
    tracing.configure_tracing("bench-otel")
    tracing.configure_tracing("bench-before")
    os.environ["OTEL_SDK_DISABLED"] = "true"
    tracing.configure_tracing("bench-otel-disabled")
    del os.environ["OTEL_SDK_DISABLED"]
    tracing.add_span_processor("bench-otel+export", BatchSpanProcessor(_Discard()))


# --- per event ------------------------------------------------------------------------------------------
def per_event_round(name: str, n: int) -> float:
    """Seconds per event of the tracing work of one consumed event that publishes one event."""
    headers = {"traceparent": PARENT}
    with mode(name) as service:
        consume = consumer_module.consume_span
        publish = uow_module.publish_headers
        started = time.process_time()
        for i in range(n):
            with consume(service, "feedback.raw.v1", headers, {"messaging.message.id": "e"}):
                tokens = structlog.contextvars.bind_contextvars(event_id="e")
                publish(service, "feedback.classified.v1", str(i))
                structlog.contextvars.reset_contextvars(**tokens)
        return (time.process_time() - started) / n


# --- consumer batch -------------------------------------------------------------------------------------
def raw_events(batch: int, offset: int) -> list[tuple[ConsumerRecord[bytes, bytes], Envelope[Any]]]:
    now = datetime.now(UTC)
    out = []
    for n in range(offset, offset + batch):
        data = RawFeedback(feedback_id=feedback_id_for("b", str(n)), source="b", external_id=str(n), channel="api",
                           text=f"item {n}", created_at=now, received_at=now)
        env = new_envelope(FEEDBACK_RAW, data, source="/bench", event_id=f"e{n}")
        record = ConsumerRecord(topic=FEEDBACK_RAW.name, partition=0, offset=n, timestamp=0, timestamp_type=0,
                                key=b"k", value=encode(env), checksum=None, serialized_key_size=1,
                                serialized_value_size=1, headers=[("traceparent", PARENT.encode())])
        out.append((record, env))
    return out


async def republish(uow: UnitOfWork, event: Envelope[Any]) -> None:
    """One event out per event in, like classification (the payload is reused: only the outbox row matters)."""
    uow.publish(FEEDBACK_RAW, event.data, event_id=f"out-{event.id}")


async def batch_rounds(rounds: int, batch: int, folder: Path) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {m: [] for m in MODES}
    consumers: dict[str, tuple[Consumer, Any]] = {}
    for name in MODES:
        metadata = MetaData()
        tables = add_runtime_tables(metadata)
        engine = create_engine(f"sqlite+aiosqlite:///{folder / name}.db")
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        source = f"/feedbackloop/bench-{name}"
        factory = UnitOfWorkFactory(session_factory(engine), tables, source, write_lock=WriteLock())
        consumer = Consumer(service=f"bench-{name}", group_id="bench", subscriptions=[Subscription(FEEDBACK_RAW,
                            republish)], uow=factory, kafka=KafkaSettings(), producer=None)  # type: ignore[arg-type]
        consumers[name] = (consumer, engine)
    offset = 0
    for round_ in range(rounds + 1):  # the first round warms up and is not counted
        for name in MODES[round_ % len(MODES):] + MODES[: round_ % len(MODES)]:  # no mode always goes first
            consumer, _engine = consumers[name]
            gc.collect()
            events = raw_events(batch, offset)
            offset += batch
            subs = consumer._subs[FEEDBACK_RAW.name]
            with mode(name):
                started = time.process_time()
                dead = await consumer._handle([(r, subs, e) for r, e in events])
                tracing.flush_tracing(consumer.service)  # the exporter thread's work is counted too
                elapsed = time.process_time() - started
            assert not dead
            results[name].append(elapsed)
    for name in MODES:
        results[name] = results[name][1:]
        await consumers[name][1].dispose()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--events", type=int, default=5000, help="events per per-event round")
    args = parser.parse_args(argv)
    configure_modes()
    load_before = os.getloadavg()
    per_event: dict[str, list[float]] = {m: [] for m in MODES}
    for round_ in range(args.rounds):
        for name in MODES[round_ % len(MODES):] + MODES[: round_ % len(MODES)]:
            gc.collect()
            per_event[name].append(per_event_round(name, args.events))
    with tempfile.TemporaryDirectory() as folder:
        batches = asyncio.run(batch_rounds(args.rounds, args.batch, Path(folder)))
    load_after = os.getloadavg()

    rows = []
    base_event = statistics.median(per_event["before"])
    base_batch = statistics.median(batches["before"])
    for name in MODES:
        event_us = statistics.median(per_event[name]) * 1e6
        batch_ms = statistics.median(batches[name]) * 1e3
        rows.append({
            "mode": name,
            "per_event_us": round(event_us, 2),
            "per_event_vs_before_us": round(event_us - base_event * 1e6, 2),
            "batch_ms": round(batch_ms, 2),
            "batch_vs_before_pct": round((batch_ms / (base_batch * 1e3) - 1) * 100, 1),
        })
    print(f"\ntracing overhead — {args.rounds} rounds, per event: {args.events} events/round, "
          f"consumer batch: {args.batch} events, each publishing one (SQLite)")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (1 min)")
    print(f"{'mode':<15}{'per event µs':>14}{'Δ vs before':>13}{'batch ms':>11}{'Δ vs before':>13}   (CPU time)")
    for r in rows:
        print(f"{r['mode']:<15}{r['per_event_us']:>14.2f}{r['per_event_vs_before_us']:>+12.2f}µ"
              f"{r['batch_ms']:>11.2f}{r['batch_vs_before_pct']:>+12.1f}%")
    out = Path("var/bench")
    out.mkdir(parents=True, exist_ok=True)
    document = {"at": datetime.now(UTC).isoformat(), "rounds": args.rounds, "batch": args.batch,
                "events_per_round": args.events, "loadavg": [load_before, load_after], "python": sys.version,
                "rows": rows}
    (out / "tracing.json").write_text(json.dumps(document, indent=2))
    print(f"written: {out / 'tracing.json'}")


if __name__ == "__main__":
    main()
