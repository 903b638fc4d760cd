"""The per-theme customer summary (``theme_customers`` + ``theme_totals``) stays exact through corrections.

Items and their corrections are applied with the service's own ``apply_classified`` on a real store
(SQLite, or PostgreSQL with ``FEEDBACKLOOP_TEST_DATABASE=postgresql``); the summary is then compared
with a recount from the latest revision of every item.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from aggregation.main import MIGRATIONS
from aggregation.service import apply_classified
from aggregation.service.reports import add_top_customers, rank_themes
from aggregation.store.analytics import AnalyticsQueries
from aggregation.store.models import ThemeTotal, runtime_tables
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, feedback_id_for, new_envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.db.engine import create_engine
from feedbackloop.db.migrate import upgrade

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
THEMES = ["login", "billing", "export"]


def _item(n: int, revision: int, rng: random.Random) -> ClassifiedFeedback:
    customer = rng.randrange(6)
    themes = rng.sample(THEMES, rng.randrange(0, 3))
    return ClassifiedFeedback.model_validate({
        "feedback_id": feedback_id_for("t", str(n)), "source": "t", "external_id": str(n), "channel": "ticket",
        "text": f"item {n}", "customer": {"id": f"c{customer}", "plan": "pro",
                                          "mrr": float(rng.choice([0, 100, 250, 2500]))},
        "created_at": T0 + timedelta(hours=n * 5), "received_at": T0 + timedelta(hours=n * 5), "revision": revision,
        "sentiment": {"label": rng.choice(["negative", "positive"]), "score": 0.1}, "kind": "bug",
        "themes": [{"id": t, "name": t.title(), "confidence": 0.8} for t in themes], "urgency": "normal",
        "model": {"name": "rules", "version": "1"}})


def _expected(latest: dict[int, ClassifiedFeedback]) -> dict[str, tuple[int, float]]:
    pairs: dict[tuple[str, str], list[float]] = {}
    for item in latest.values():
        for theme in {t.id for t in item.themes}:
            pairs.setdefault((theme, str(item.customer.id)), []).append(item.customer.mrr or 0.0)
    out: dict[str, tuple[int, float]] = {}
    for (theme, _), mrrs in pairs.items():
        customers, mrr = out.get(theme, (0, 0.0))
        out[theme] = (customers + 1, mrr + round(sum(mrrs) / len(mrrs), 2))
    return {t: (c, round(m, 2)) for t, (c, m) in out.items()}


async def test_customer_summary_survives_corrections_duplicates_and_late_revisions(
        database_url: Callable[[str], str]) -> None:
    engine = create_engine(database_url("aggregation"))
    await upgrade(engine, MIGRATIONS)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    rng = random.Random(7)
    latest: dict[int, ClassifiedFeedback] = {}
    events: list[ClassifiedFeedback] = [_item(n, 1, rng) for n in range(60)]
    for revision in (2, 3):  # corrections move items between themes and customers
        events += [_item(n, revision, rng) for n in rng.sample(range(60), 30)]
    events += [_item(n, 1, rng) for n in range(0, 60, 7)]  # stale revisions arriving late: ignored
    applied = 0
    for item in events:
        async with UnitOfWork(sessions, runtime_tables, "/test") as uow:
            envelope: Any = new_envelope(FEEDBACK_CLASSIFIED, item, source="/test")
            if await apply_classified(uow, envelope):
                applied += 1
                latest[int(item.external_id)] = item
            await uow.commit()
    assert applied == 60 + 30 + 30  # every first revision and correction; none of the stale ones

    async with sessions() as session:
        stored = {r.theme_id: (r.customers, round(r.affected_mrr, 2))
                  for (r,) in await session.execute(select(ThemeTotal)) if r.customers}
    expected = _expected(latest)
    assert stored == expected and len(expected) == 3

    queries = AnalyticsQueries(engine)
    reports = await rank_themes(queries, None, 100.0)
    assert {r.id: (r.customers, r.affected_mrr) for r in reports} == expected
    await add_top_customers(queries, None, reports)
    for report in reports:
        top = report.top_customers
        assert [(c.mrr, c.count) for c in top] == sorted(((c.mrr, c.count) for c in top), reverse=True)
        assert len(top) == min(5, expected[report.id][0])
    await engine.dispose()

