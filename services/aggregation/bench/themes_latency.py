"""p95 latency of ``GET /v1/themes`` with ``BENCH_ITEMS`` (1,000,000) items stored. Not part of ``make test``.

Builds a fresh SQLite store under var/bench/: the items are generated (a year, 40 themes, 5,000
customers, ratings), their rows and their rollups computed with the service's own domain functions
(``feedback_row``, ``contributions``) and bulk-inserted — the state the consumer would have reached.
Then it serves the real app (no broker needed for reads) and times ``BENCH_REQUESTS`` (200) requests of
each query. Prints a table and writes var/bench/aggregation-themes.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from aggregation.config import AggregationSettings
from aggregation.domain.items import feedback_row, theme_rows
from aggregation.domain.rollups import Measures, RollupKey, add_into, contributions
from aggregation.main import MIGRATIONS, create_app
from aggregation.store.models import FeedbackRecord, FeedbackTheme, Rollup, ThemeName
from feedbackloop.contracts import ClassifiedFeedback, feedback_id_for
from feedbackloop.db.engine import create_engine
from feedbackloop.db.migrate import upgrade
from feedbackloop.keys import KeyStore
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop.testing import free_port, serve_app

ITEMS = int(os.environ.get("BENCH_ITEMS", "1000000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
OUT = Path("var/bench")


def _item(rng: random.Random, n: int, now: datetime) -> ClassifiedFeedback:
    at = now - timedelta(seconds=rng.randrange(365 * 86400))
    theme = rng.randrange(40)
    customer = rng.randrange(5000)
    negative = rng.random() < 0.3
    rating = ({"kind": "nps", "value": rng.randrange(11), "scale": 10} if rng.random() < 0.15 else None)
    return ClassifiedFeedback.model_validate({
        "feedback_id": feedback_id_for("bench", str(n)), "source": "bench", "external_id": str(n),
        "channel": "ticket", "text": f"bench item {n} about theme {theme}",
        "customer": {"id": f"c{customer}", "plan": ("free", "pro", "enterprise")[customer % 3],
                     "mrr": float((0, 99, 2500)[customer % 3])},
        "rating": rating, "created_at": at, "received_at": at, "classified_at": at + timedelta(seconds=2),
        "revision": 1, "sentiment": {"label": "negative" if negative else "positive",
                                     "score": -0.6 if negative else 0.5},
        "kind": "bug", "themes": [{"id": f"theme-{theme:02d}", "name": f"Theme {theme:02d}", "confidence": 0.8}],
        "product_area": f"area-{theme // 8}", "urgency": "high" if rng.random() < 0.05 else "normal",
        "model": {"name": "bench", "version": "1"}})


async def _load(url: str) -> float:
    engine = create_engine(url, sqlite_synchronous="OFF")
    await upgrade(engine, MIGRATIONS)
    rng = random.Random(1)
    now = datetime.now(UTC)
    rollups: dict[RollupKey, Measures] = {}
    started = time.perf_counter()
    chunk = 20_000
    async with engine.begin() as conn:
        for first in range(0, ITEMS, chunk):
            items = [_item(rng, n, now) for n in range(first, min(first + chunk, ITEMS))]
            await conn.execute(insert(FeedbackRecord), [feedback_row(i).values() for i in items])
            await conn.execute(insert(FeedbackTheme), [t.values() for i in items for t in theme_rows(i)])
            for i in items:
                add_into(rollups, contributions(i))
            print(f"  generated {first + len(items):,} items", file=sys.stderr, end="\r")
        rows = [{"bucket": k.bucket, "start": k.start, "dimension": k.dimension, "key": k.key, **m.values()}
                for k, m in rollups.items()]
        for i in range(0, len(rows), 50_000):
            await conn.execute(insert(Rollup), rows[i:i + 50_000])
        await conn.execute(insert(ThemeName), [{"theme_id": f"theme-{t:02d}", "name": f"Theme {t:02d}",
                                                "seen_at": now} for t in range(40)])
    await engine.dispose()
    print(f"\n  stored {ITEMS:,} items and {len(rows):,} rollup cells", file=sys.stderr)
    return time.perf_counter() - started


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / "aggregation-bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{db}"
    load_seconds = await _load(url)
    keys_file = OUT / "bench-keys.json"
    keys_file.unlink(missing_ok=True)
    key = KeyStore(keys_file).create("bench", ["read"])[1]
    settings = AggregationSettings(database_url=url, common=CommonSettings(keys_file=keys_file),
                                   kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
                                   detect_interval_seconds=3600)
    queries = {"GET /v1/themes (all time)": {}, "GET /v1/themes?window=7d": {"window": "7d"},
               "GET /v1/themes?window=30d": {"window": "30d"}, "GET /v1/kpis?window=7d": {"window": "7d"}}
    results = []
    async with serve_app(create_app(settings)) as base, httpx.AsyncClient(
            base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
        for name, params in queries.items():
            path = "/v1/kpis" if "kpis" in name else "/v1/themes"
            (await client.get(path, params=params)).raise_for_status()  # warm-up
            times = []
            for _ in range(REQUESTS):
                t0 = time.perf_counter()
                response = await client.get(path, params=params)
                times.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
            times.sort()
            results.append({"query": name, "requests": REQUESTS, "p50_ms": round(statistics.median(times), 1),
                            "p95_ms": round(times[int(0.95 * len(times)) - 1], 1), "max_ms": round(times[-1], 1)})
    report = {"items": ITEMS, "load_seconds": round(load_seconds, 1), "results": results,
              "machine": f"{os.cpu_count()} CPUs, shared with other engineers' work while measured",
              "measured_at": datetime.now(UTC).isoformat()}
    (OUT / "aggregation-themes.json").write_text(json.dumps(report, indent=2))
    print(f"\n{ITEMS:,} items stored (loaded in {load_seconds:.0f} s); {REQUESTS} sequential requests each; "
          "machine shared with other engineers while measured")
    print(f"{'query':32} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for r in results:
        print(f"{r['query']:32} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8}")
    print(f"written to {OUT / 'aggregation-themes.json'}")


if __name__ == "__main__":
    asyncio.run(main())
