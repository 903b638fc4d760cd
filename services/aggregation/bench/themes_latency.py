"""p95 latency of ``GET /v1/themes`` with ``BENCH_ITEMS`` (1,000,000) items stored. Not part of ``make test``.

Builds a fresh SQLite store under var/bench/: the items are generated (a year, 40 themes, 5,000
customers, ratings), their rows and their rollups computed with the service's own domain functions
(``feedback_row``, ``contributions``) and bulk-inserted — the state the consumer would have reached.
Then it serves the real app (no broker needed for reads) and times ``BENCH_REQUESTS`` (200) requests of
each query, twice (the machine is shared; the 1-minute load average is printed beside each row). Prints a
table and writes var/bench/aggregation.json. Before that it checks that its bulk load builds exactly the
store ``apply_classified`` builds, on a 2,000-item sample. ``BENCH_REUSE=1`` measures an existing store again.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from aggregation.config import AggregationSettings
from aggregation.main import MIGRATIONS, create_app
from aggregation.service import apply_classified
from aggregation.store.models import (
    FeedbackRecord,
    FeedbackTheme,
    LabelKey,
    Rollup,
    ThemeCustomer,
    ThemeName,
    ThemeTotal,
    runtime_tables,
)
from aggregation.store.rollups import MEASURES
from feedbackloop.contracts import FEEDBACK_CLASSIFIED, ClassifiedFeedback, feedback_id_for, new_envelope
from feedbackloop.db import UnitOfWork
from feedbackloop.db.engine import create_engine
from feedbackloop.db.migrate import upgrade
from feedbackloop.keys import KeyStore
from feedbackloop.settings import CommonSettings, KafkaSettings
from feedbackloop_testing import free_port, serve_app

ITEMS = int(os.environ.get("BENCH_ITEMS", "1000000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "200"))
REUSE = os.environ.get("BENCH_REUSE") == "1"
OUT = Path("var/bench")


THEMES, CUSTOMERS = 40, 5000
PLANS = ("free", "pro", "enterprise")
MRR = (0.0, 99.0, 2500.0)


@dataclass(frozen=True)
class Columns:
    """The generated items as columns: a year of traffic, 40 themes, 5,000 customers, some NPS ratings."""

    at: np.ndarray  # created_at, epoch seconds
    theme: np.ndarray
    customer: np.ndarray
    negative: np.ndarray
    urgent: np.ndarray
    nps: np.ndarray  # rating value 0-10, or -1 for no rating

    def __len__(self) -> int:
        return len(self.at)


def _columns(count: int, now: int, seed: int = 1) -> Columns:
    rng = np.random.default_rng(seed)
    rated = rng.random(count) < 0.15
    return Columns(at=now - rng.integers(0, 365 * 86400, count), theme=rng.integers(0, THEMES, count),
                   customer=rng.integers(0, CUSTOMERS, count), negative=rng.random(count) < 0.3,
                   urgent=rng.random(count) < 0.05, nps=np.where(rated, rng.integers(0, 11, count), -1))


def _event_data(cols: Columns, n: int) -> dict[str, Any]:
    """The ``feedback.classified.v1`` data of item ``n``, as ``ClassifiedFeedback.model_dump`` would give it."""
    at = datetime.fromtimestamp(int(cols.at[n]), UTC)
    theme, customer, negative = int(cols.theme[n]), int(cols.customer[n]), bool(cols.negative[n])
    nps = int(cols.nps[n])
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "feedback_id": str(feedback_id_for("bench", str(n))), "source": "bench", "external_id": str(n),
        "channel": "ticket", "text": f"bench item {n} about theme {theme}", "subject": None,
        "author": {"id": None, "email_hash": None, "name": None},
        "customer": {"id": f"c{customer}", "name": None, "plan": PLANS[customer % 3], "mrr": MRR[customer % 3]},
        "rating": {"kind": "nps", "value": float(nps), "scale": 10} if nps >= 0 else None, "tags": [], "url": None,
        "language": None, "created_at": stamp, "received_at": stamp, "redactions": {}, "duplicate_of": None,
        "revision": 1, "sentiment": {"label": "negative" if negative else "positive",
                                     "score": -0.6 if negative else 0.5, "confidence": None},
        "kind": "bug", "themes": [{"id": f"theme-{theme:02d}", "name": f"Theme {theme:02d}", "confidence": 0.8}],
        "product_area": f"area-{theme // 8}", "urgency": "high" if cols.urgent[n] else "normal",
        "model": {"name": "bench", "version": "1"}, "corrected_by": None,
        "classified_at": (at + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ"), "cluster": None,
        "kind_confidence": None, "needs_review": False, "review_reasons": []}


def _item(cols: Columns, n: int) -> ClassifiedFeedback:
    return ClassifiedFeedback.model_validate(_event_data(cols, n))


def _feedback_rows(cols: Columns, first: int, last: int) -> list[dict[str, Any]]:
    """What ``feedback_row(item).values()`` gives for items first..last-1, without building the models."""
    rows = []
    for n in range(first, last):
        data = _event_data(cols, n)
        at = datetime.fromtimestamp(int(cols.at[n]), UTC)
        rows.append({"feedback_id": data["feedback_id"], "revision": 1, "created_at": at,
                     "classified_at": at + timedelta(seconds=2), "received_at": at, "source": "bench",
                     "channel": "ticket", "kind": "bug", "sentiment_label": data["sentiment"]["label"],
                     "sentiment_score": data["sentiment"]["score"], "urgency": data["urgency"],
                     "product_area": data["product_area"], "language": None, "customer_id": data["customer"]["id"],
                     "customer_plan": data["customer"]["plan"], "customer_mrr": data["customer"]["mrr"],
                     "text": data["text"], "data": data, "classify_seconds": 2.0, "cluster_id": None,
                     "backdated": False})
    return rows


def _week_start(day: np.ndarray) -> np.ndarray:
    week: np.ndarray = day - ((day // 86400 + 3) % 7) * 86400
    return week  # 1970-01-01 was a Thursday; weeks start on Monday


def _cells(cols: Columns) -> tuple[list[dict[str, Any]], list[tuple[str, int, str, str, int, float]]]:
    """Rollup rows (what ``contributions`` adds up to, summed with numpy) and the theme x customer cells."""
    mrr = np.array(MRR)[cols.customer % 3]
    measures = {"count": np.ones(len(cols)), "negative": cols.negative.astype(float),
                "sentiment_sum": np.where(cols.negative, -0.6, 0.5), "urgent": cols.urgent.astype(float),
                "mrr_sum": mrr, "nps_responses": (cols.nps >= 0).astype(float),
                "nps_promoters": (cols.nps >= 9).astype(float),
                "nps_detractors": ((cols.nps >= 0) & (cols.nps <= 6)).astype(float),
                "csat_responses": np.zeros(len(cols)), "csat_satisfied": np.zeros(len(cols))}
    hour = cols.at - cols.at % 3600
    day = cols.at - cols.at % 86400
    starts = {"hour": hour, "day": day, "week": _week_start(day), "total": np.zeros(len(cols), dtype=np.int64)}
    labels = {"all": (np.zeros(len(cols), dtype=np.int64), ["*"]),
              "theme": (cols.theme, [f"theme-{t:02d}" for t in range(THEMES)]),
              "product_area": (cols.theme // 8, [f"area-{a}" for a in range(THEMES // 8 + 1)]),
              "kind": (np.zeros(len(cols), dtype=np.int64), ["bug"]),
              "source": (np.zeros(len(cols), dtype=np.int64), ["bench"]),
              "channel": (np.zeros(len(cols), dtype=np.int64), ["ticket"]),
              "plan": (cols.customer % 3, list(PLANS)),
              "customer": (cols.customer, [f"c{c}" for c in range(CUSTOMERS)])}
    rows: list[dict[str, Any]] = []
    for bucket, start in starts.items():
        for dimension, (codes, names) in labels.items():
            groups, inverse = np.unique(start * 10_000 + codes, return_inverse=True)
            sums = {m: np.bincount(inverse, weights=v) for m, v in measures.items()}
            for g, group in enumerate(groups):
                rows.append({"bucket": bucket, "start": int(group // 10_000), "dimension": dimension,
                             "key": names[int(group % 10_000)],
                             **{m: (float(sums[m][g]) if m in ("sentiment_sum", "mrr_sum") else int(sums[m][g]))
                                for m in MEASURES}})
    pairs: list[tuple[str, int, str, str, int, float]] = []
    for bucket in ("day", "total"):
        groups, inverse = np.unique((starts[bucket] * THEMES + cols.theme) * CUSTOMERS + cols.customer,
                                    return_inverse=True)
        counts, mrr_sums = np.bincount(inverse), np.bincount(inverse, weights=mrr)
        for g, group in enumerate(groups):
            customer, rest = int(group % CUSTOMERS), int(group // CUSTOMERS)
            pairs.append((bucket, rest // THEMES, f"theme-{rest % THEMES:02d}", f"c{customer}", int(counts[g]),
                          float(mrr_sums[g])))
    return rows, pairs


async def _bulk_load(url: str, cols: Columns, now: datetime) -> None:
    """Build the store ``apply_classified`` would build from these revision-1 items, with bulk inserts:
    the feedback and theme rows, the rollup cells, the theme x customer presence rows with their label
    keys and the per-theme totals, all computed here (``check_bulk_load_matches_service`` proves them equal)."""
    engine = create_engine(url, sqlite_synchronous="OFF")
    await upgrade(engine, MIGRATIONS)
    chunk = 20_000
    async with engine.begin() as conn:
        for first in range(0, len(cols), chunk):
            last = min(first + chunk, len(cols))
            rows = _feedback_rows(cols, first, last)
            await conn.execute(insert(FeedbackRecord), rows)
            await conn.execute(insert(FeedbackTheme), [
                {"feedback_id": r["feedback_id"], "theme_id": t["id"], "theme_name": t["name"],
                 "confidence": t["confidence"]} for r in rows for t in r["data"]["themes"]])
            print(f"  stored {last:,} items", file=sys.stderr, end="\r")
        cells, pairs = _cells(cols)
        for i in range(0, len(cells), 50_000):
            await conn.execute(insert(Rollup), cells[i:i + 50_000])
        labels: dict[tuple[str, str], int] = {}
        presence = []
        totals: dict[str, list[float]] = {}
        for bucket, start, theme, customer, count, mrr_sum in pairs:
            theme_key = labels.setdefault(("theme", theme), len(labels) + 1)
            customer_key = labels.setdefault(("customer", customer), len(labels) + 1)
            mrr = round(mrr_sum / count, 2)
            presence.append({"bucket": bucket, "start": start, "theme_key": theme_key, "customer_key": customer_key,
                             "customer_id": customer, "count": count, "mrr_sum": mrr_sum, "mrr": mrr})
            if bucket == "total":
                total = totals.setdefault(theme, [0, 0.0])
                total[0] += 1
                total[1] += mrr
        await conn.execute(insert(LabelKey), [{"key": n, "kind": kind, "value": value}
                                              for (kind, value), n in labels.items()])
        for i in range(0, len(presence), 50_000):
            await conn.execute(insert(ThemeCustomer), presence[i:i + 50_000])
        await conn.execute(insert(ThemeTotal), [{"theme_id": t, "customers": int(c), "affected_mrr": m}
                                                for t, (c, m) in totals.items()])
        themes = sorted({int(t) for t in np.unique(cols.theme)})
        await conn.execute(insert(ThemeName), [{"theme_id": f"theme-{t:02d}", "name": f"Theme {t:02d}",
                                                "seen_at": now} for t in themes])
    await engine.dispose()
    print(f"\n  stored {len(cols):,} items, {len(cells):,} rollup cells, {len(presence):,} presence rows",
          file=sys.stderr)


async def _apply_through_service(url: str, items: list[ClassifiedFeedback]) -> None:
    """The real path: every item through ``apply_classified`` in its own unit of work."""
    engine = create_engine(url, sqlite_synchronous="OFF")
    await upgrade(engine, MIGRATIONS)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    for item in items:
        async with UnitOfWork(sessions, runtime_tables, "/bench") as uow:
            await apply_classified(uow, new_envelope(FEEDBACK_CLASSIFIED, item, source="/bench"))
            await uow.commit()
    await engine.dispose()


async def _dump(url: str) -> dict[str, Any]:
    """What the read side uses, independent of the label keys' numbering."""
    engine = create_engine(url)
    tc, label = ThemeCustomer.__table__, LabelKey.__table__
    theme, customer = label.alias("theme"), label.alias("customer")
    async with engine.connect() as conn:
        rollups = {tuple(r[:4]): tuple(round(float(x), 6) for x in r[4:]) for r in await conn.execute(
            select(Rollup.__table__).where(Rollup.count != 0))}
        presence = {(r[0], r[1], r[2], r[3]): (r[4], round(r[5], 6), r[6]) for r in await conn.execute(
            select(tc.c.bucket, tc.c.start, theme.c.value, customer.c.value, tc.c["count"], tc.c.mrr_sum, tc.c.mrr)
            .join(theme, theme.c.key == tc.c.theme_key).join(customer, customer.c.key == tc.c.customer_key))}
        totals = {r[0]: (r[1], round(r[2], 6)) for r in await conn.execute(select(ThemeTotal.__table__))}
        feedback = {r[0]: r[1] for r in await conn.execute(select(FeedbackRecord.feedback_id,
                                                                  FeedbackRecord.data))}
    await engine.dispose()
    return {"rollups": rollups, "presence": presence, "totals": totals, "feedback": feedback}


async def check_bulk_load_matches_service(folder: Path, sample: int = 2000) -> None:
    """Load the same ``sample`` items both ways and require identical stores; raises AssertionError if not."""
    now = int(time.time())
    cols = _columns(sample, now, seed=2)
    urls = []
    for name in ("sample-bulk", "sample-service"):
        db = folder / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        urls.append(f"sqlite+aiosqlite:///{db}")
    await _bulk_load(urls[0], cols, datetime.now(UTC))
    await _apply_through_service(urls[1], [_item(cols, n) for n in range(sample)])
    bulk, real = await _dump(urls[0]), await _dump(urls[1])
    for part in ("rollups", "presence", "totals", "feedback"):
        assert bulk[part] == real[part], f"bulk load differs from apply_classified in {part}"
    print(f"  bulk load of {sample:,} items matches apply_classified (rollups, presence, totals, items)",
          file=sys.stderr)


async def _load(url: str) -> float:
    started = time.perf_counter()
    await _bulk_load(url, _columns(ITEMS, int(time.time())), datetime.now(UTC))
    return time.perf_counter() - started


async def _measure(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    queries = {"GET /v1/themes (all time)": {}, "GET /v1/themes?window=7d": {"window": "7d"},
               "GET /v1/themes?window=30d": {"window": "30d"}, "GET /v1/kpis?window=7d": {"window": "7d"}}
    results = []
    for name, params in queries.items():
        path = "/v1/kpis" if "kpis" in name else "/v1/themes"
        (await client.get(path, params=params)).raise_for_status()  # warm-up
        load_before = os.getloadavg()[0]
        times = []
        for _ in range(REQUESTS):
            t0 = time.perf_counter()
            response = await client.get(path, params=params)
            times.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
        times.sort()
        results.append({"query": name, "requests": REQUESTS, "p50_ms": round(statistics.median(times), 1),
                        "p95_ms": round(times[int(0.95 * len(times)) - 1], 1), "max_ms": round(times[-1], 1),
                        "load_avg_1m": round(max(load_before, os.getloadavg()[0]), 2)})
    return results


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    await check_bulk_load_matches_service(OUT)
    db = OUT / "aggregation-bench.db"
    url = f"sqlite+aiosqlite:///{db}"
    load_seconds: float | None = None
    if REUSE and db.exists():
        await upgrade(create_engine(url), MIGRATIONS)
        print(f"  reusing {db} (BENCH_REUSE=1)", file=sys.stderr)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        load_seconds = await _load(url)
    keys_file = OUT / "bench-keys.json"
    keys_file.unlink(missing_ok=True)
    key = KeyStore(keys_file).create("bench", ["read"])[1]
    settings = AggregationSettings(database_url=url, common=CommonSettings(keys_file=keys_file),
                                   kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
                                   detect_interval_seconds=3600)
    rounds = []
    async with serve_app(create_app(settings)) as base, httpx.AsyncClient(
            base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
        for _ in range(2):  # the machine is shared: a second round shows how much the numbers move
            rounds.append(await _measure(client))
    report = {"items": ITEMS, "load_seconds": None if load_seconds is None else round(load_seconds, 1),
              "rounds": rounds, "machine": f"{os.cpu_count()} CPUs, shared with other engineers' work while measured",
              "measured_at": datetime.now(UTC).isoformat()}
    (OUT / "aggregation.json").write_text(json.dumps(report, indent=2))
    loaded = "reused store" if load_seconds is None else f"loaded in {load_seconds:.0f} s"
    print(f"\n{ITEMS:,} items stored ({loaded}); {REQUESTS} sequential requests per query and round; "
          f"{os.cpu_count()} CPUs shared with other work (1-min load average beside each row)")
    print(f"{'round':>5} {'query':28} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'load':>6}")
    for n, results in enumerate(rounds, 1):
        for r in results:
            print(f"{n:>5} {r['query']:28} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['max_ms']:>8} {r['load_avg_1m']:>6}")
    print(f"written to {OUT / 'aggregation.json'}")


if __name__ == "__main__":
    asyncio.run(main())
