"""INGEST_RAW_RETENTION_DAYS: the raw request copy of old items is blanked in batches; the redacted item stays."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from feedbackloop.db import UnitOfWorkFactory, WriteLock
from feedbackloop.db.engine import create_engine, session_factory
from feedbackloop.db.migrate import upgrade
from feedbackloop_testing import store_url
from ingest.config import IngestSettings
from ingest.domain.feedback import FeedbackIn, RedactionPolicy
from ingest.domain.pseudonym import Pseudonymizer
from ingest.main import MIGRATIONS
from ingest.service import Submission, store_submissions
from ingest.store.models import FeedbackItem, runtime_tables
from ingest.worker import RawRetention, raw_retention_worker

POLICY = RedactionPolicy(Pseudonymizer(b"retention-test-key-0123456789"))
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def accept_feedback(
    uow: UnitOfWorkFactory, items: list[FeedbackIn], received_at: datetime, *, policy: RedactionPolicy
) -> list[uuid.UUID]:
    (ids,) = await store_submissions(uow, [Submission.of(items, received_at, policy=policy)])
    assert isinstance(ids, list)
    return ids


def _items(prefix: str, n: int) -> list[FeedbackIn]:
    return [FeedbackIn(source="api", external_id=f"{prefix}-{i}", text=f"Call me at jane{i}@example.com")
            for i in range(n)]


async def test_old_raw_copies_are_blanked_in_batches_and_new_ones_kept(tmp_path: Path) -> None:
    engine = create_engine(store_url(tmp_path, "ingest"))
    try:
        await upgrade(engine, MIGRATIONS)
        uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/feedbackloop/ingest",
                                write_lock=WriteLock())
        await accept_feedback(uow, _items("old", 7), NOW - timedelta(days=40), policy=POLICY)
        await accept_feedback(uow, _items("older", 5), NOW - timedelta(days=90), policy=POLICY)
        await accept_feedback(uow, _items("new", 4), NOW - timedelta(days=2), policy=POLICY)
        retention = RawRetention(uow, timedelta(days=30), batch=3, interval=60)

        assert await retention.purge(NOW) == 12
        assert await retention.purge(NOW) == 0, "a second round finds nothing left"
        async with uow() as unit:
            rows = (await unit.session.execute(select(FeedbackItem.external_id, FeedbackItem.raw,
                                                      FeedbackItem.item))).all()
        blanked = {e for e, raw, _ in rows if raw is None}
        assert blanked == {f"old-{i}" for i in range(7)} | {f"older-{i}" for i in range(5)}
        assert all(raw is not None and "jane" in str(raw) for e, raw, _ in rows if e.startswith("new-"))
        assert all(item["text"].startswith("Call me at [EMAIL]") for _, _, item in rows), "the redacted item stays"
        # an item arriving again after its raw copy went is still a redelivery, stored once
        assert len(await accept_feedback(uow, _items("old", 1), NOW, policy=POLICY)) == 1
        async with uow() as unit:
            assert len((await unit.session.execute(select(FeedbackItem.feedback_id))).all()) == 16
    finally:
        await engine.dispose()


async def test_the_worker_runs_only_when_a_retention_is_set_and_stops_when_asked(tmp_path: Path) -> None:
    assert raw_retention_worker(IngestSettings()) == [], "off by default"
    assert len(raw_retention_worker(IngestSettings(raw_retention_days=30))) == 1
    engine = create_engine(store_url(tmp_path, "ingest"))
    try:
        await upgrade(engine, MIGRATIONS)
        uow = UnitOfWorkFactory(session_factory(engine), runtime_tables, source="/feedbackloop/ingest")
        await accept_feedback(uow, _items("old", 2), datetime.now(UTC) - timedelta(days=31), policy=POLICY)
        worker = RawRetention(uow, timedelta(days=30), batch=10, interval=3600)
        task = asyncio.create_task(worker.run())

        async def blanked() -> int:
            async with uow() as unit:
                rows = (await unit.session.execute(select(FeedbackItem.raw))).all()
            return sum(raw is None for (raw,) in rows)

        deadline = asyncio.get_running_loop().time() + 10
        while await blanked() < 2:
            assert asyncio.get_running_loop().time() < deadline, "the worker blanked nothing within 10 s"
            await asyncio.sleep(0.05)
        worker.stop()
        await asyncio.wait_for(task, timeout=5)
    finally:
        await engine.dispose()
