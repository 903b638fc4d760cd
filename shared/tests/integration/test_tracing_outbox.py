"""The trace context a unit of work writes into its outbox rows, on a real SQLite file."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import MetaData, select

from feedbackloop import tracing
from feedbackloop.contracts import CONTENT_TYPE, FEEDBACK_RAW, RawFeedback, feedback_id_for
from feedbackloop.db import UnitOfWorkFactory, add_runtime_tables, create_engine, session_factory
from feedbackloop_testing import store_url

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def raw_feedback(n: int) -> RawFeedback:
    now = datetime.now(UTC)
    return RawFeedback(feedback_id=feedback_id_for("t", str(n)), source="t", external_id=str(n), channel="api",
                       text=f"item {n}", created_at=now, received_at=now)


async def test_each_published_event_carries_its_own_span_in_the_consumed_events_trace(tmp_path: Path) -> None:
    metadata = MetaData()
    tables = add_runtime_tables(metadata)
    engine = create_engine(store_url(tmp_path, "svc"))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    service = f"outbox-{uuid.uuid4().hex[:6]}"
    uow = UnitOfWorkFactory(session_factory(engine), tables, f"/feedbackloop/{service}")
    incoming = {"traceparent": f"00-{PARENT_TRACE}-00f067aa0ba902b7-01", "tracestate": "v=1"}
    try:
        async with uow() as work:
            with tracing.consume_span(service, FEEDBACK_RAW.name, incoming):
                work.publish(FEEDBACK_RAW, raw_feedback(1))
                work.publish(FEEDBACK_RAW, raw_feedback(2))
            work.publish(FEEDBACK_RAW, raw_feedback(3))  # outside any span: a trace of its own
            await work.commit()
        async with engine.connect() as conn:
            headers = [r[0] for r in await conn.execute(select(tables.outbox.c.headers).order_by(tables.outbox.c.id))]
    finally:
        tracing.shutdown_tracing(service)
        await engine.dispose()
    parts = [h["traceparent"].split("-") for h in headers]
    assert all(h["content-type"] == CONTENT_TYPE for h in headers)
    assert parts[0][1] == parts[1][1] == PARENT_TRACE and parts[2][1] != PARENT_TRACE
    assert len({p[2] for p in parts} | {"00f067aa0ba902b7"}) == 4, "a span id of its own for every event"
    assert headers[0]["tracestate"] == headers[1]["tracestate"] == "v=1" and "tracestate" not in headers[2]
