"""Two ``python -m aggregation`` copies on one PostgreSQL database, in one consumer group: every classified
event is handled by exactly one copy, every item is stored once at its latest revision, the shared rollups
add up to the item counts (atomic upserts under two writers), and the periodic detectors, which both copies
run, raise each insight once (the leader lease lets one copy judge at a time).

PostgreSQL whatever ``FEEDBACKLOOP_TEST_DATABASE`` says (the ``postgres_url`` fixture): this is the
production path's concurrency, which SQLite (one process per store) does not have."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aggregation_testkit import classified
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from aggregation.worker import DETECTOR_LEASE
from feedbackloop.broker import EmbeddedBroker
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, INSIGHTS, ClassifiedFeedback, encode, feedback_id_for
from feedbackloop.contracts.envelope import new_envelope
from feedbackloop.db import create_engine, lease_key
from feedbackloop.runtime.kafka import ensure_topics
from feedbackloop.settings import KafkaSettings
from feedbackloop_testing import query_store, wait_for
from tests.postgres.copies import ServiceCopy, child_env, read_topic, two_copies

pytestmark = pytest.mark.e2e

BASELINE_THEMES = ("billing", "onboarding", "performance", "mobile")
SPIKE_THEME = "checkout"
CLUSTER = "cl-export-pdf"


@pytest.fixture
def aggregation_pair(tmp_path: Path, broker: EmbeddedBroker, postgres_url: Callable[[str], str],
                     keys_file: Path, admin_key: str) -> Iterator[tuple[list[ServiceCopy], str]]:
    url = postgres_url("aggregation")
    env = child_env(KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap, KAFKA_TOPIC_PARTITIONS="4",
                    AGGREGATION_DATABASE_URL=url, AGGREGATION_DETECT_INTERVAL_SECONDS="0.5",
                    FEEDBACKLOOP_KEYS_FILE=str(keys_file), FEEDBACKLOOP_LOG_LEVEL="WARNING",
                    FEEDBACKLOOP_LOG_FORMAT="console")
    with two_copies("aggregation", env, tmp_path) as started:
        yield started, url


def stream(now: datetime) -> tuple[list[tuple[str, ClassifiedFeedback]], dict[str, ClassifiedFeedback]]:
    """The records to send, as (event id, item), in order, and the latest revision of each item.

    A four-day baseline of one item an hour or so over four themes, a planted spike of one theme in one
    hour three hours ago, a cluster of similar items that fit no theme (an emerging theme), revision-2
    corrections of every eighth item (new theme and sentiment), stale revision-1 re-sends under new event
    ids (handled, changing nothing) and re-sends of earlier event ids (duplicates)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    records: list[tuple[str, ClassifiedFeedback]] = []

    def item(n: int, created: datetime, theme: str | None, label: str = "neutral", **changes: Any) -> None:
        themes = [{"id": theme, "name": theme.title(), "confidence": 0.9}] if theme else []
        score = {"negative": -0.7, "neutral": 0.0, "positive": 0.7}[label]
        records.append((f"c-{n}-r1", classified(
            str(n), feedback_id=feedback_id_for("two", str(n)), source="two", created_at=created,
            received_at=created, themes=themes, urgency="normal", kind="bug",
            sentiment={"label": label, "score": score},
            customer={"id": f"cust-{n % 40}", "plan": "pro", "mrr": 100 + n % 40}, **changes)))

    n = 0
    for k in range(430):  # the baseline: 96 hours back, about 4.5 items an hour
        item(n, hour - timedelta(hours=96) + timedelta(minutes=k * 13 + 1), BASELINE_THEMES[k % 4],
             ("negative", "neutral", "positive")[k % 3])
        n += 1
    for k in range(40):  # the spike
        item(n, hour - timedelta(hours=3) + timedelta(minutes=k), SPIKE_THEME, "positive")
        n += 1
    for k in range(10):  # the emerging cluster
        item(n, hour - timedelta(hours=5) + timedelta(minutes=k), None,
             cluster={"id": CLUSTER, "terms": ["export", "pdf", "blank"]})
        n += 1
    latest = {str(i.feedback_id): i for _, i in records}
    firsts = list(records)
    for event_id, first in firsts[::8]:  # corrections: revision 2, another theme, negative
        corrected = first.model_copy(update={
            "revision": 2, "sentiment": first.sentiment.model_copy(update={"label": "negative", "score": -0.9}),
            "themes": [first.themes[0].model_copy(update={"id": "billing", "name": "Billing"})] if first.themes
            else []})
        records.append((event_id.replace("-r1", "-r2"), corrected))
        latest[str(first.feedback_id)] = corrected
    for event_id, first in firsts[3::23]:  # stale revision 1 under a new event id: handled, a no-op
        records.append((event_id.replace("-r1", "-stale"), first))
    records += firsts[5::13]  # the same event ids again: duplicates
    return records, latest


async def produce(kafka: KafkaSettings, records: list[tuple[str, ClassifiedFeedback]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for event_id, item in records:
            event = new_envelope(FEEDBACK_CLASSIFIED, item, source="/test", event_id=event_id)
            await producer.send(FEEDBACK_CLASSIFIED.name, encode(event), key=str(item.feedback_id).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def all_feedback(client: httpx.AsyncClient, base: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{base}/v1/feedback", params=params)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def test_two_aggregation_copies_keep_one_store_exact_and_raise_each_insight_once(
    aggregation_pair: tuple[list[ServiceCopy], str], broker: EmbeddedBroker, admin_key: str
) -> None:
    running, url = aggregation_pair
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=4)
    await ensure_topics(kafka)
    for copy in running:
        await wait_for(copy.ready, lambda status: status == 200, timeout=90, what=f"copy on :{copy.port} ready")

    # The test takes the detectors' lease first, as a third copy would: while it holds it, neither copy judges.
    engine = create_engine(url)
    lease = await engine.connect()
    try:
        await wait_for(lambda: take_lease(lease), bool, timeout=30, interval=0.2, what="the detector lease taken")
        records, latest = stream(datetime.now(UTC))
        await produce(kafka, records)
        await check_store(url, running, records, latest, admin_key)
        judged = await query_store(url, "SELECT type FROM insights")
        dirty = await query_store(url, "SELECT count(*) FROM detect_dirty_hours")
        assert not judged and dirty[0][0] > 0, f"detectors ran while another held the lease: {judged}, {dirty}"
        await lease.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lease_key(DETECTOR_LEASE)})
        await lease.commit()
    finally:
        await lease.close()
        await engine.dispose()
    await check_detectors(url, kafka, running)


async def take_lease(conn: AsyncConnection) -> bool:
    taken = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lease_key(DETECTOR_LEASE)}))
    held = bool(taken.scalar_one())
    await conn.commit()
    return held


async def check_store(url: str, running: list[ServiceCopy], records: list[tuple[str, ClassifiedFeedback]],
                      latest: dict[str, ClassifiedFeedback], admin_key: str) -> None:
    """Each event handled by one copy; each item listed once at its latest revision; rollups exact."""
    distinct_events = len({event_id for event_id, _ in records})

    async def consumed() -> list[int]:
        return [await c.consumed(FEEDBACK_CLASSIFIED.name, o) for c in running for o in ("handled", "duplicate")]

    await wait_for(lambda: query_store(url, "SELECT count(*) FROM processed_events"),
                   lambda rows: rows[0][0] >= distinct_events, timeout=180, interval=0.5,
                   what=f"{distinct_events} distinct events committed")
    counts = await wait_for(consumed, lambda c: sum(c) >= len(records), timeout=30, interval=0.5,
                            what=f"{len(records)} records consumed")
    handled = [counts[0], counts[2]]
    assert all(share > 0 for share in handled), f"both copies took partitions: {handled}"
    # Two writers on the same rollup rows can deadlock; PostgreSQL aborts one batch, which is retried whole,
    # and the counter counts a batch once it committed: each distinct event exactly once in the group.
    assert sum(handled) == distinct_events, f"copies handled {handled} of {distinct_events} events"

    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {admin_key}"}) as client:
        for copy in running:  # either copy serves the one store
            listed = await all_feedback(client, copy.base)
            ids = Counter(i["feedback_id"] for i in listed)
            assert set(ids) == set(latest) and max(ids.values()) == 1, \
                f"{len(set(latest) - set(ids))} items missing, {sum(v - 1 for v in ids.values())} listed twice"
            stale = [i["feedback_id"] for i in listed if i["revision"] != latest[i["feedback_id"]].revision]
            assert not stale, f"{len(stale)} items not at their latest revision"

        kpis = (await client.get(f"{running[1].base}/v1/kpis", params={"window": "30d"})).json()
        assert kpis["current"]["volume"] == len(latest), kpis["current"]
        negative = sum(1 for i in latest.values() if i.sentiment.label == "negative")
        assert kpis["current"]["negative_share"] == pytest.approx(negative / len(latest)), kpis["current"]

        themes = (await client.get(f"{running[0].base}/v1/themes", params={"limit": 200})).json()["items"]
        expected = Counter(t.id for i in latest.values() for t in i.themes)
        got = {t["id"]: t["count"] for t in themes if t["id"] in expected}
        assert got == dict(expected), f"theme counts {got}, items say {dict(expected)}"
        negatives = Counter(t.id for i in latest.values() for t in i.themes if i.sentiment.label == "negative")
        assert {t["id"]: t["negative_count"] for t in themes if t["id"] in expected} == \
            {k: negatives.get(k, 0) for k in expected}


async def check_detectors(url: str, kafka: KafkaSettings, running: list[ServiceCopy]) -> None:
    """The detectors judged the planted spike and cluster once, and each insight was published once."""
    # The detectors (every 0.5 s in both copies) judged the planted spike and the emerging cluster.
    async def insights() -> list[tuple[Any, ...]]:
        return await query_store(url, "SELECT insight_id, type, theme FROM insights")

    raised = await wait_for(insights, lambda rows: {("spike", SPIKE_THEME), ("emerging_theme", None)}
                            <= {(r[1], r[2]) for r in rows}, timeout=60, interval=0.5,
                            what="the planted spike and the emerging theme raised")
    assert [r[1:] for r in raised].count(("spike", SPIKE_THEME)) == 1, raised
    assert [r[1] for r in raised].count("emerging_theme") == 1, raised
    episodes = sorted(await query_store(url, "SELECT detector, subject, first, last FROM detect_episodes"))
    close = [(a, b) for a, b in itertools.pairwise(episodes)
             if a[0] == "spike" and a[:2] == b[:2] and b[2] - a[3] <= 6 * 3600]  # the spike cooldown
    assert not close, f"one episode raised twice: {close}"
    clusters = await query_store(url, "SELECT items, insight_id FROM clusters WHERE cluster_id = :c", c=CLUSTER)
    assert clusters and clusters[0][0] == 10 and clusters[0][1] is not None, clusters

    # Each insight goes out once, whichever copy's relay publishes it.
    await wait_for(lambda: query_store(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
                   lambda rows: rows[0][0] == 0, timeout=60, interval=0.5, what="both outboxes drained")
    # A spike that grows is re-published as a new revision of its insight: each (insight, revision) goes out once.
    events = await read_topic(kafka.bootstrap_servers, INSIGHTS.name)
    published = Counter((e["data"]["insight_id"], e["data"].get("revision", 1)) for e in events)
    assert {i for i, _ in published} == {r[0] for r in raised}, "every stored insight published, nothing else"
    assert max(published.values()) == 1, f"published twice: {[k for k, v in published.items() if v > 1]}"
    assert all((i, 1) in published for i, _ in published), "every insight's first revision went out"

    failed = [line for copy in running for line in copy.log_lines("detectors failed")]
    assert not failed, f"detector runs collided ({len(failed)}): {failed[:3]}"
