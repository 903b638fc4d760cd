"""Benchmark: how fast aggregation's consumer applies a backlog of ``feedback.classified.v1`` events.

    .venv/bin/python services/aggregation/bench/consumer_throughput.py [--items 10000] [--postgres]

Starts an embedded broker, publishes ``--items`` classified events first (a month of items over 12 themes, 6
sources, 300 customers on three plans, NPS and CSAT ratings, a few urgent ones, and revision-2 corrections of
one item in ten, published after their first revision under the same key), then starts the real aggregation app
on a store in a temporary folder (SQLite, or a throwaway PostgreSQL with ``--postgres``) and measures the time
until every event is committed (``processed_events``) and every item is stored at its latest revision: items/s
from the app's start and from the first applied event, and the process's CPU time. Prints a line and writes JSON
to ``var/bench/aggregation-consumer.json`` (``aggregation-consumer-postgres.json`` with ``--postgres``).
Numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from aggregation.config import AggregationSettings
from aggregation.main import create_app
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, feedback_id_for
from feedbackloop.db import create_engine
from feedbackloop.runtime import ensure_topics
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import make_test_broker, publish_events, serve_app

SEED = 15
OUT = Path("var/bench/aggregation-consumer.json")

THEMES = [("login", "Login & authentication"), ("billing", "Billing"), ("checkout", "Checkout"),
          ("export", "Export"), ("performance", "Performance"), ("mobile", "Mobile app"),
          ("notifications", "Notifications"), ("search", "Search"), ("onboarding", "Onboarding"),
          ("integrations", "Integrations"), ("reports", "Reports"), ("sso", "Single sign-on")]
AREAS = ["auth", "payments", "data", "platform", "apps", None]
SOURCES = [("zendesk", "ticket"), ("intercom", "chat"), ("appstore", "review"), ("playstore", "review"),
           ("email", "email"), ("survey", "survey")]
KINDS = ["bug", "feature_request", "question", "praise", "complaint", "other"]
PLANS = [("free", 0.0), ("pro", 49.0), ("enterprise", 1200.0)]


def classified_items(count: int, *, seed: int = SEED, corrected: float = 0.1) -> list[ClassifiedFeedback]:
    """``count`` events: first revisions over the last 30 days, then revision-2 corrections of a tenth of them
    (another theme and sentiment), each after its first revision."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    run = uuid.uuid4().hex[:8]
    firsts = int(count / (1 + corrected))
    items = []
    for n in range(firsts):
        created = now - timedelta(seconds=rng.randrange(30 * 86400))
        source, channel = rng.choice(SOURCES)
        plan, mrr = rng.choice(PLANS)
        label = rng.choices(["negative", "neutral", "positive"], [5, 3, 2])[0]
        themes = [{"id": t, "name": name, "confidence": round(rng.uniform(0.5, 0.99), 2)}
                  for t, name in rng.sample(THEMES, rng.choice((0, 1, 1, 1, 2)))]
        fields: dict[str, Any] = {
            "feedback_id": feedback_id_for(source, f"{run}-{n}"), "source": source, "external_id": f"{run}-{n}",
            "channel": channel, "text": f"Item {n}: the {rng.choice(THEMES)[1].lower()} page misbehaves again",
            "customer": {"id": f"cust-{rng.randrange(300)}", "name": None, "plan": plan, "mrr": mrr or None},
            "created_at": created, "received_at": created + timedelta(seconds=rng.randrange(1, 120)),
            "classified_at": created + timedelta(seconds=rng.randrange(120, 600)),
            "revision": 1, "sentiment": {"label": label, "score": {"negative": -0.7, "neutral": 0.0,
                                                                    "positive": 0.6}[label]},
            "kind": rng.choice(KINDS), "themes": themes, "product_area": rng.choice(AREAS),
            "urgency": rng.choices(["low", "normal", "high", "critical"], [20, 70, 9, 1])[0],
            "model": {"name": "bench", "version": "1"},
        }
        if rng.random() < 0.25:
            fields["rating"] = rng.choice([{"kind": "nps", "value": rng.randrange(11), "scale": 10},
                                           {"kind": "csat", "value": rng.randrange(1, 6), "scale": 5}])
        if not themes and rng.random() < 0.3:
            fields["cluster"] = {"id": f"cl-{rng.randrange(20)}", "terms": ["export", "pdf", "blank"]}
        items.append(ClassifiedFeedback.model_validate(fields))
    out = list(items)
    for first in rng.sample(items, count - firsts):  # corrections come after the first revision (same key)
        theme = rng.choice(THEMES)
        out.append(first.model_copy(update={
            "revision": 2, "sentiment": first.sentiment.model_copy(update={"label": "negative", "score": -0.9}),
            "themes": [first.themes[0].model_copy(update={"id": theme[0], "name": theme[1]})] if first.themes
            else []}))
    return out


@contextmanager
def store(folder: Path, postgres: bool) -> Iterator[str]:
    if not postgres:
        yield f"sqlite+aiosqlite:///{folder}/aggregation.db"
        return
    from feedbackloop_testing.throwaway import ThrowawayPostgres

    server = ThrowawayPostgres()
    server.start()
    try:
        yield server.url(server.create_database("aggbench"))
    finally:
        server.stop()


async def _progress(engine: Any) -> tuple[int, int, int]:
    """(committed events, stored items, sum of their revisions); zeros before the migrations ran."""
    try:
        async with engine.connect() as conn:
            events = (await conn.execute(text("SELECT count(*) FROM processed_events"))).scalar_one()
            row = (await conn.execute(text("SELECT count(*), coalesce(sum(revision), 0) FROM feedback"))).one()
            return int(events), int(row[0]), int(row[1])
    except Exception:  # not migrated yet
        return 0, 0, 0


@contextmanager
def profiled(out: Path | None) -> Iterator[None]:
    """py-spy (beside the interpreter) sampling this process into ``out`` (raw collapsed stacks, one line per
    thread's stack) while the block runs; nothing without ``out``."""
    if out is None:
        yield
        return
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(os.getpid()),
                            "--rate", "100", "--threads", "--format", "raw", "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


async def _consume(settings: AggregationSettings, events: int, latest: dict[str, int],
                   timeout: float) -> tuple[float, float, list[tuple[float, int]]]:
    """Serve the app until every event is committed and every item stored at its latest revision: the wall and
    CPU seconds from its start, and (seconds, committed events) every 0.1 s."""
    engine = create_engine(settings.database_url)
    try:
        async with serve_app(create_app(settings)):
            cpu_start, wall_start = os.times(), time.perf_counter()
            progress: list[tuple[float, int]] = []
            while True:
                done, stored, revisions = await _progress(engine)
                progress.append((time.perf_counter() - wall_start, done))
                if done >= events and stored == len(latest) and revisions == sum(latest.values()):
                    break
                if progress[-1][0] > timeout:
                    raise TimeoutError(f"{done} of {events} events applied after {timeout:.0f} s")
                await asyncio.sleep(0.1)
            wall, cpu_end = time.perf_counter() - wall_start, os.times()
    finally:
        await engine.dispose()
    return wall, (cpu_end.user - cpu_start.user) + (cpu_end.system - cpu_start.system), progress


async def run(count: int, postgres: bool, batch_size: int | None, timeout: float,
              profile: Path | None = None) -> dict[str, Any]:
    events = classified_items(count)
    latest: dict[str, int] = {}
    for e in events:
        latest[str(e.feedback_id)] = max(latest.get(str(e.feedback_id), 0), e.revision)
    with tempfile.TemporaryDirectory(prefix="aggregation-bench-") as tmp:
        folder = Path(tmp)
        broker = make_test_broker(folder)
        broker.start()
        try:
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, topic_partitions=3,
                                  replication_factor=broker.replication_factor)
            await ensure_topics(kafka)
            started = time.perf_counter()
            await publish_events(kafka, FEEDBACK_CLASSIFIED, events, key="feedback_id")
            publish_s = time.perf_counter() - started
            with store(folder, postgres) as url:
                extra = {"consumer_batch_size": batch_size} if batch_size else {}
                settings = AggregationSettings(
                    database_url=url, kafka=kafka, detect_interval_seconds=3600.0,
                    common=CommonSettings(keys_file=folder / "keys.json", log_format="console",
                                          log_level="WARNING"), **extra)
                with profiled(profile):
                    wall, cpu, progress = await _consume(settings, len(events), latest, timeout)
        finally:
            broker.stop()
    first_t, first_done = next((t, d) for t, d in progress if d > 0)
    return {
        "store": "postgresql" if postgres else "sqlite", "events": len(events), "items": len(latest),
        "corrections": len(events) - len(latest), "batch_size": settings.consumer_batch_size,
        "publish_seconds": round(publish_s, 2), "seconds": round(wall, 2),
        "items_per_s": round(len(events) / wall, 1), "first_applied_after_s": round(first_t, 2),
        "items_per_s_after_first": round((len(events) - first_done) / (wall - first_t), 1) if wall > first_t
        else None,
        "cpu_seconds": round(cpu, 2), "cpu_share_of_one_core": round(cpu / wall, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "at": datetime.now(UTC).isoformat(),
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})",
        "note": "events per second, revisions included; the broker runs in its own process; shared machine",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000, help="events to publish (corrections included)")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL store instead of SQLite")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="AGGREGATION_CONSUMER_BATCH_SIZE for this run (default: the service's setting)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None,
                        help="record the consuming phase with py-spy into this file (raw collapsed stacks)")
    args = parser.parse_args()
    result = asyncio.run(run(args.items, args.postgres, args.batch_size, args.timeout, args.profile))
    print(f"{'store':>10} {'events':>7} {'items':>6} {'batch':>6} {'seconds':>8} {'items/s':>8} {'after 1st':>10} "
          f"{'cpu/wall':>9}")
    print(f"{result['store']:>10} {result['events']:>7} {result['items']:>6} {result['batch_size']:>6} "
          f"{result['seconds']:>8} {result['items_per_s']:>8} {result['items_per_s_after_first']!s:>10} "
          f"{result['cpu_share_of_one_core']:>9}")
    print(f"peak RSS {result['peak_rss_mb']} MB; {result['machine']}")
    out = args.out or (OUT.with_name("aggregation-consumer-postgres.json") if args.postgres else OUT)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
