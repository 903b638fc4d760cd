"""The detectors against a real store: a spike that grows is re-published as revisions through the outbox,
and a cluster that repeats a known theme raises no emerging theme.

Items go in through ``apply_classified`` as the consumer applies them; ``run_detectors`` runs in its own
unit of work as the worker runs it. On SQLite, or on PostgreSQL with ``FEEDBACKLOOP_TEST_DATABASE=postgresql``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aggregation_testkit import classified
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from aggregation.config import AggregationSettings
from aggregation.domain.episodes import insight_event_id
from aggregation.main import MIGRATIONS
from aggregation.service import apply_classified, run_detectors
from aggregation.store.detection import DetectionRepository
from aggregation.store.models import ClusterRecord, InsightRecord, runtime_tables
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, ClassifiedFeedback, Insight, new_envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.db.engine import create_engine
from feedbackloop.db.migrate import upgrade

NOW = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)
SPIKE_HOUR = NOW.replace(minute=0) - timedelta(hours=3)
LOGIN = {"id": "account.login", "name": "Login & authentication", "confidence": 0.9}


class Store:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[UnitOfWork]:
        async with UnitOfWork(self.sessions, runtime_tables, "/feedbackloop/aggregation") as uow:
            yield uow

    async def apply(self, items: list[ClassifiedFeedback]) -> None:
        async with self.uow() as uow:
            for item in items:
                async with uow.savepoint():
                    await apply_classified(uow, new_envelope(FEEDBACK_CLASSIFIED, item, source="/test"))
            await uow.commit()

    async def detect(self, at: datetime) -> list[Insight]:
        async with self.uow() as uow:
            raised = await run_detectors(uow, AggregationSettings(), at)
            await uow.commit()
        return raised

    async def rows(self, stmt: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(stmt)).all())

    async def published(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        """(event id, data) of the insights.v1 events in the outbox for ``key``, in order."""
        outbox = runtime_tables.outbox
        rows = await self.rows(select(outbox.c.event_id, outbox.c.value).where(
            outbox.c.topic == INSIGHTS.name, outbox.c.key == key).order_by(outbox.c.id))
        return [(r.event_id, json.loads(r.value)["data"]) for r in rows]


@pytest.fixture
async def store(database_url: Callable[[str], str]) -> AsyncIterator[Store]:
    opened = Store(database_url("aggregation"))
    await upgrade(opened.engine, MIGRATIONS)
    try:
        yield opened
    finally:
        await opened.engine.dispose()


def _baseline() -> list[ClassifiedFeedback]:
    """Five quiet days: a login item every 3 hours, a billing one every 2."""
    items = []
    start = SPIKE_HOUR - timedelta(days=5)
    for n in range(0, 5 * 24, 3):
        at = start + timedelta(hours=n, minutes=7)
        items.append(classified(f"base-login-{n}", created_at=at, received_at=at, themes=[LOGIN]))
    for n in range(0, 5 * 24, 2):
        at = start + timedelta(hours=n, minutes=31)
        items.append(classified(f"base-billing-{n}", created_at=at, received_at=at,
                                themes=[{"id": "billing", "name": "Billing", "confidence": 0.9}]))
    return items


def _burst(first: int, count: int, hour: datetime) -> list[ClassifiedFeedback]:
    return [classified(f"burst-{n}", created_at=hour + timedelta(minutes=n % 55 + 1), received_at=NOW,
                       text=f"Cannot log in since the update ({n})", themes=[LOGIN])
            for n in range(first, first + count)]


async def test_a_spike_episode_that_grows_is_republished_as_revisions(store: Store) -> None:
    await store.apply(_baseline() + _burst(0, 10, SPIKE_HOUR))
    raised = [i for i in await store.detect(NOW) if i.type == "spike"]
    assert [(i.theme, i.revision, i.metrics["observed"]) for i in raised] == [("account.login", 1, 10)]
    insight_id = str(raised[0].insight_id)
    assert raised[0].title.startswith("Login & authentication: 10 items, ×")  # noqa: RUF001
    assert len(raised[0].evidence) == 10 and raised[0].updated_at is None

    # Four more items in the hour: 14 is not material growth over 10, nothing is re-published.
    await store.apply(_burst(10, 4, SPIKE_HOUR))
    assert [i for i in await store.detect(NOW + timedelta(minutes=1)) if i.type == "spike"] == []

    # Six more: 20 is half again over the 10 published, so revision 2 says so.
    await store.apply(_burst(14, 6, SPIKE_HOUR))
    (second,) = [i for i in await store.detect(NOW + timedelta(minutes=2)) if i.type == "spike"]
    assert (str(second.insight_id), second.revision, second.metrics["observed"]) == (insight_id, 2, 20)
    assert second.metrics["first_observed"] == 10 and second.title.startswith("Login & authentication: 20 items")
    assert len(second.evidence) == 20 and second.updated_at == NOW + timedelta(minutes=2)

    # The episode goes on into the next hour (anomalous on its own): 35 + 25 items over two hours.
    await store.apply(_burst(20, 15, SPIKE_HOUR) + _burst(35, 25, SPIKE_HOUR + timedelta(hours=1)))
    (third,) = [i for i in await store.detect(NOW + timedelta(minutes=3)) if i.type == "spike"]
    assert (third.revision, third.metrics["observed"], third.metrics["first_observed"]) == (3, 60, 10)
    assert (third.window.from_, third.window.to) == (SPIKE_HOUR, SPIKE_HOUR + timedelta(hours=2))
    assert len(third.evidence) == 50, "the evidence is capped"
    assert third.severity == "critical"
    assert float(third.metrics["expected"] or 0) > float(second.metrics["expected"] or 0), "two hours' baseline"

    # One stored insight, at its latest revision, still listed where it was first raised.
    (row,) = await store.rows(select(InsightRecord).where(InsightRecord.type == "spike"))
    stored = row[0]
    assert stored.data["revision"] == 3 and stored.data["metrics"]["observed"] == 60
    assert stored.created_at.replace(tzinfo=UTC) == NOW and stored.data["created_at"].startswith("2025-03-10T12:30")

    # Three events under the insight's key, each with its own event id, so subscribers see each revision once.
    published = await store.published(insight_id)
    assert [event_id for event_id, _ in published] == [insight_event_id(insight_id, r) for r in (1, 2, 3)]
    assert [(d["revision"], d["metrics"]["observed"]) for _, d in published] == [(1, 10), (2, 20), (3, 60)]


async def test_a_spike_episode_across_two_windows_of_a_backfill_is_told_once_with_all_its_hours(store: Store) -> None:
    # A backfill: a month of login items (one every 3 hours), all arriving at once. Its dirty hours span more
    # than the 28 days of history a run reads before an hour, so the run judges them in two windows, and the
    # burst's two hours fall one on each side of the boundary (the second window starts at its second hour).
    start = SPIKE_HOUR - timedelta(days=28)
    base = [classified(f"base-{n}", created_at=start + timedelta(hours=n), received_at=NOW, themes=[LOGIN])
            for n in range(0, 29 * 24, 3) if start + timedelta(hours=n) < SPIKE_HOUR - timedelta(hours=1)]
    await store.apply(base + _burst(0, 12, SPIKE_HOUR - timedelta(hours=1)) + _burst(12, 9, SPIKE_HOUR))

    spikes = [i for i in await store.detect(NOW) if i.type == "spike" and i.theme == "account.login"]

    assert [(i.revision, i.metrics["observed"]) for i in spikes] == [(1, 21)], "one insight with both hours"
    assert (spikes[0].window.from_, spikes[0].window.to) == (SPIKE_HOUR - timedelta(hours=1),
                                                             SPIKE_HOUR + timedelta(hours=1))
    assert len(await store.published(str(spikes[0].insight_id))) == 1
    assert await store.detect(NOW + timedelta(minutes=1)) == [], "every dirty hour was judged and forgotten"


def _cluster(prefix: str, n: int, text: str, cluster: dict[str, Any], themes: list[dict[str, Any]] | None = None,
             start: int = 0) -> list[ClassifiedFeedback]:
    return [classified(f"{prefix}-{k}", created_at=NOW - timedelta(hours=30 - k), received_at=NOW, text=text,
                       themes=themes or [], cluster={**cluster, "size": k + 1}) for k in range(start, start + n)]


async def test_a_cluster_that_repeats_a_known_theme_raises_no_emerging_theme(store: Store) -> None:
    onboarding = {"id": "onboarding", "name": "Onboarding", "confidence": 0.7}
    filed = [classified(f"onb-{k}", created_at=NOW - timedelta(days=k + 1), received_at=NOW,
                        text="It took ages setting up my workspace for the team", themes=[onboarding])
             for k in range(6)]
    workspace = {"id": "c-ws", "terms": ["workspace took", "took long", "setting workspace"]}
    dark = {"id": "c-dark", "terms": ["dark mode", "dark", "night"]}
    blank = {"id": "c-blank", "terms": ["pdf blank", "blank pages"]}
    export = {"id": "export", "name": "Export", "confidence": 0.6}
    await store.apply(filed
                      + _cluster("ws", 5, "The workspace took so long, setting workspace up is a pain", workspace)
                      + _cluster("dark", 5, "Please add a dark mode for night work", dark)
                      # a producer that sends a theme and a cluster: most of the cluster's items carry Export
                      + _cluster("blank", 5, "The PDF comes out as blank pages", blank, [export]))
    raised = [i for i in await store.detect(NOW) if i.type == "emerging_theme"]
    assert [i.metrics["cluster_id"] for i in raised] == ["c-dark"]

    async def clusters() -> dict[str, tuple[Any, ...]]:
        rows = await store.rows(select(ClusterRecord.cluster_id, ClusterRecord.duplicate_of, ClusterRecord.judged_items,
                                       ClusterRecord.insight_id))
        return {r[0]: tuple(r[1:]) for r in rows}

    verdicts = await clusters()
    assert verdicts["c-ws"] == ("onboarding", 5, None) and verdicts["c-blank"] == ("export", 5, None)
    assert verdicts["c-dark"][:2] == (None, None) and verdicts["c-dark"][2] == str(raised[0].insight_id)

    # A duplicate is not judged again on every run; once it has doubled, it is, and still repeats Onboarding.
    async with store.sessions() as session:
        assert await DetectionRepository(session).unflagged_clusters(5) == []
    assert [i for i in await store.detect(NOW + timedelta(minutes=1)) if i.type == "emerging_theme"] == []
    await store.apply(_cluster("ws", 5, "The workspace took so long, setting workspace up is a pain", workspace,
                               start=5))
    async with store.sessions() as session:
        assert [c.cluster_id for c in await DetectionRepository(session).unflagged_clusters(5)] == ["c-ws"]
    assert [i for i in await store.detect(NOW + timedelta(minutes=2)) if i.type == "emerging_theme"] == []
    assert (await clusters())["c-ws"] == ("onboarding", 10, None)
