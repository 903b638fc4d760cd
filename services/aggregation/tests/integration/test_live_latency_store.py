"""Time to classify against a real store: back-dated imports are left out and counted, on a new store and on
one upgraded from schema 0003 (whose rows are marked by the migration). SQLite, or PostgreSQL with
``FEEDBACKLOOP_TEST_DATABASE=postgresql``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from aggregation_testkit import classified
from sqlalchemy.ext.asyncio import async_sessionmaker

from aggregation.domain.items import feedback_row
from aggregation.domain.windows import window_ending
from aggregation.main import MIGRATIONS
from aggregation.service import apply_classified
from aggregation.service.reports import kpi_report
from aggregation.store.analytics import AnalyticsQueries
from aggregation.store.models import FeedbackRecord, runtime_tables
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, new_envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.db.engine import create_engine
from feedbackloop.db.migrate import upgrade

END = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _items() -> list[ClassifiedFeedback]:
    """Three live items classified in 2, 4 and 6 s; two tickets of two days ago imported (and classified) now."""
    live = [classified(f"live-{s}", created_at=END - timedelta(hours=5), received_at=END - timedelta(hours=5),
                       classified_at=END - timedelta(hours=5) + timedelta(seconds=s)) for s in (2, 4, 6)]
    imported = [classified(f"csv-{k}", created_at=END - timedelta(days=2, minutes=k),
                           received_at=END - timedelta(hours=1),
                           classified_at=END - timedelta(hours=1) + timedelta(seconds=3)) for k in range(2)]
    return live + imported


async def test_time_to_classify_leaves_out_backdated_imports_and_counts_them(
        database_url: Callable[[str], str]) -> None:
    engine = create_engine(database_url("aggregation"))
    try:
        await upgrade(engine, MIGRATIONS)
        async with UnitOfWork(async_sessionmaker(engine, expire_on_commit=False), runtime_tables, "/test") as uow:
            for item in _items():
                await apply_classified(uow, new_envelope(FEEDBACK_CLASSIFIED, item, source="/test"))
            await uow.commit()
        report = await kpi_report(AnalyticsQueries(engine), window_ending(END, timedelta(days=7)))
        assert report.current.volume == 5, "imports are feedback like any other: they count in the volume"
        assert report.current.median_time_to_classify_s == 4.0 and report.current.backdated_excluded == 2
        assert report.previous.median_time_to_classify_s is None and report.previous.backdated_excluded == 0
    finally:
        await engine.dispose()


async def test_upgrading_a_0003_store_marks_its_backdated_rows(database_url: Callable[[str], str]) -> None:
    engine = create_engine(database_url("aggregation"))
    try:
        await upgrade(engine, MIGRATIONS, "0003")
        # The feedback table as schema 0003 had it: every column but ``backdated``.
        old = sa.Table("feedback", sa.MetaData(), *[sa.Column(c.name, c.type) for c in FeedbackRecord.__table__.columns
                                                    if c.name != "backdated"])
        rows = [{k: v for k, v in feedback_row(i).values().items() if k != "backdated"} for i in _items()]
        async with engine.begin() as conn:
            await conn.execute(sa.insert(old), rows)
        await upgrade(engine, MIGRATIONS)
        async with engine.connect() as conn:
            marked = {r[0] for r in await conn.execute(sa.select(FeedbackRecord.feedback_id)
                                                       .where(FeedbackRecord.backdated.is_(True)))}
        assert marked == {str(i.feedback_id) for i in _items() if i.external_id.startswith("csv-")}
        median, excluded = await AnalyticsQueries(engine).classify_latency(END - timedelta(days=7), END)
        assert (median, excluded) == (4.0, 2)
    finally:
        await engine.dispose()
